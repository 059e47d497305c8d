"""Cloud providers: the list with each one's state, a credential check against the provider itself,
and submitting a job that runs there (``POST /api/cloud/{provider}/submit``, the external-orchestration
example of the enterprise guide). Their settings are ``/api/cloud/providers/{provider}/config``
(``api/routers/costs.py``)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from activities.identity.principals import Principal
from activities.providers import circuit, registry
from activities.providers import settings as provider_settings
from api import provider_checks
from api.deps import PrincipalDep, StateDep, client_ip, require
from api.schemas.jobs import Submitted
from api.schemas.providers import ProviderList, Validation
from api.submission import ProviderSubmitBody, submission_body, submit

router = APIRouter(tags=["providers"])
ProviderName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", max_length=64)]
ConfigAdminDep = Annotated[Principal, Depends(require("admin.config"))]
SubmitterDep = Annotated[Principal, Depends(require("job.submit"))]
REPLAY = {200: {"model": Submitted, "description": "The same submission again (idempotency key): the job it made"}}


def provider_rows(state) -> list[dict]:
    with state.db.session() as session:
        out = []
        for name in registry.names():
            row = provider_settings.config(session, name)
            missing = provider_settings.configured(row)
            breaker = circuit.state(session, name)
            out.append({"name": name, "configured": not missing, "missing": missing,
                        "healthy": not missing and breaker["state"] != "open", "webhooks": bool(row.webhook_url),
                        "polling_interval_seconds": provider_settings.polling(row, state.settings).interval_seconds,
                        "circuit": breaker})
        return out


@router.get("/api/cloud/providers", response_model=ProviderList)
async def list_providers(state: StateDep, _: PrincipalDep) -> dict:
    return {"providers": await asyncio.to_thread(provider_rows, state)}


@router.post("/api/cloud/providers/{provider}/validate", response_model=Validation)
async def validate_provider(provider: ProviderName, state: StateDep, principal: ConfigAdminDep) -> dict:
    """A real call to the provider with the credential a job of the caller would use."""
    return await provider_checks.validate(state, provider, principal.user_id)


@router.post("/api/cloud/{provider}/submit", status_code=201, response_model=Submitted, responses=REPLAY)
async def submit_to_provider(provider: ProviderName, body: ProviderSubmitBody, state: StateDep,
                             principal: SubmitterDep, request: Request, response: Response) -> dict:
    registry.get(provider)  # 404 for an unknown provider
    submission = submission_body({**body.model_dump(exclude_unset=True), "target": provider})
    job, created = await submit(submission, principal, state.db, state.temporal, state.settings, client_ip(request))
    response.status_code = 201 if created else 200
    return {"job_id": job["job_id"], "status": job["status"], "idempotent_replay": not created, "job": job}
