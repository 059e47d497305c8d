"""Cost: per-provider cost limits, their status, and the estimate of a job before submitting it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import ConfigDict, Field

from activities.request_body import RequestBody
from activities.errors import InvalidInput, NotFound
from activities.jobs import configs
from activities.governance import cost
from activities.governance import cost_limits
from activities.governance.cost_limits import PROVIDER_RE, ProviderConfigBody
from activities.identity.principals import Principal
from api.deps import PrincipalDep, SessionDep, StateDep, client_ip, require
from api.schemas.costs import CostEstimate, CostLimitStatus, ProviderConfig

router = APIRouter(tags=["cost"])
ConfigAdminDep = Annotated[Principal, Depends(require("admin.config"))]
ProviderName = Annotated[str, Path(pattern=PROVIDER_RE, max_length=64)]


class EstimateBody(RequestBody):
    model_config = ConfigDict(extra="forbid")
    config_name: str = Field(min_length=1, max_length=128)
    gpu_count: int | None = Field(None, ge=1, le=1024)
    estimated_hours: float | None = Field(None, ge=0, le=100_000)


@router.get("/api/cloud/providers/{provider}/config", response_model=ProviderConfig)
def get_provider_config(provider: ProviderName, session: SessionDep, _: ConfigAdminDep) -> dict:
    return cost_limits.to_dict(cost_limits.get(session, provider))


@router.put("/api/cloud/providers/{provider}/config", response_model=ProviderConfig)
def put_provider_config(provider: ProviderName, body: ProviderConfigBody, session: SessionDep,
                        principal: ConfigAdminDep, request: Request) -> dict:
    row = cost_limits.put(session, provider, body, principal.username, client_ip(request))
    session.commit()
    return cost_limits.to_dict(row)


@router.get("/api/cloud/metrics/cost-limit-status", response_model=CostLimitStatus)
def cost_limit_status(session: SessionDep, _: Annotated[Principal, Depends(require("job.view.all"))]) -> dict:
    return {"providers": cost_limits.all_status(session)}


@router.post("/api/quotas/cost-estimate", response_model=CostEstimate)
def cost_estimate(body: EstimateBody, session: SessionDep, state: StateDep, _: PrincipalDep) -> dict:
    try:
        config = configs.get(session, body.config_name)
    except NotFound:
        raise InvalidInput(f"unknown config_name {body.config_name!r}") from None
    gpus = body.gpu_count or config.gpu_count
    hours = body.estimated_hours if body.estimated_hours is not None else config.estimated_hours
    rates = state.settings.cost.hourly_rates_usd
    rate = cost.hourly_rate(config.hardware_type, rates)
    return {"config_name": config.name, "hardware_type": config.hardware_type, "gpu_count": gpus,
            "estimated_hours": hours, "hourly_rate_usd": rate,
            "gpu_hours": round(hours * gpus, 4) if hours is not None else None,
            "cost_estimate_usd": cost.estimate_usd(config.hardware_type, gpus, hours, rates)}
