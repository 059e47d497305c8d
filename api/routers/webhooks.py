"""``POST /api/webhooks/{provider}``: a cloud provider reports a training (no user session: the
signature is the authentication). Checks in ``activities.providers.webhooks``; what a verified delivery
says is written to the database first, then the job's workflow gets a hint to read it."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import APIRouter, Path, Request
from temporalio.service import RPCError

from activities.errors import Unauthorized
from activities.observability.log_context import LogContext
from activities.providers import registry, trainings, webhooks
from activities.providers import settings as provider_settings
from activities.providers.base import ProviderCallError, ProviderRefused, WebhookRejected
from api.deps import StateDep, client_ip
from api.schemas.providers import WebhookAck
from workflows.contracts import PROVIDER_CHANGED_SIGNAL

router = APIRouter(tags=["providers"])
log = logging.getLogger("simpletuner.api.webhooks")
SECRETS = webhooks.SecretCache()
ProviderName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", max_length=64)]
REFUSALS = {401: {"description": "bad signature or timestamp"}, 403: {"description": "source not allowed"},
            404: {"description": "no job runs this training"}}


@router.post("/api/webhooks/{provider}", response_model=WebhookAck, responses=REFUSALS)
async def receive_webhook(provider: ProviderName, request: Request, state: StateDep) -> dict:
    impl = registry.get(provider)
    ip = client_ip(request)
    body = await request.body()
    training_id = webhooks.training_id_of(body)

    def locate():
        with state.db.session() as session:
            row = provider_settings.config(session, provider)
            if not webhooks.allowed(ip, row):
                raise webhooks.refuse_source(session, provider, ip)
            training = trainings.by_training_id(session, training_id)
            if training is None or training.provider != provider:
                raise webhooks.unknown_training(session, provider, training_id, ip)
            user = None if training.credential_source == "global" else webhooks.owner_of(session, training)
            try:
                token, _ = provider_settings.token(session, provider, user, state.settings.secret_resolver)
            except ProviderRefused as exc:
                raise Unauthorized(f"webhook cannot be verified: {exc.detail}") from None
            return row, token, training.job_id

    row, token, job_id = await asyncio.to_thread(locate)

    async def fetch_secret() -> str:
        async with provider_settings.connection(row, state.settings.outbound_http, token) as conn:
            return await impl.webhook_secret(conn)

    try:
        delivery = await SECRETS.verify(impl, token, fetch_secret, request.headers, body)
    except WebhookRejected as exc:
        await asyncio.to_thread(_refused, state, provider, training_id, ip, exc.detail)
        raise Unauthorized(exc.detail) from None
    except (ProviderCallError, ProviderRefused) as exc:
        raise ProviderCallError(f"cannot verify the webhook: the secret could not be fetched ({exc.detail})") from None
    parsed = webhooks.parse(impl, body)

    def apply() -> tuple[bool, str]:
        with state.db.session() as session:
            if not webhooks.first_delivery(session, provider, delivery, training_id):
                return False, parsed.status
            training = trainings.find(session, job_id)
            assert training is not None
            trainings.apply(session, training, impl, parsed)
            session.commit()
            return True, training.status

    applied, status = await asyncio.to_thread(apply)
    with LogContext(job_id=job_id, provider=provider, step="webhook"):
        log.info("webhook %s for training %s (%s)%s", delivery, training_id, parsed.status,
                 "" if applied else ": already applied, acknowledged")
    if applied:
        try:
            await state.temporal.get_workflow_handle(job_id).signal(PROVIDER_CHANGED_SIGNAL)
        except RPCError as exc:  # the workflow ended or Temporal is away: its next poll reads the same row
            log.warning("job %s: webhook recorded, the workflow could not be told (%s)", job_id, exc.message)
    return {"received": True, "applied": applied, "job_id": job_id}


def _refused(state, provider: str, training_id: str, ip: str | None, why: str) -> None:
    with state.db.session() as session:
        webhooks.refuse_signature(session, provider, training_id, ip, why)
