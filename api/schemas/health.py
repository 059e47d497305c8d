"""Answers of the health routes: liveness, readiness (also its 503) and the full report (also
when unhealthy, with 503). Messages are plain; details only for credentialed ``admin.config``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from api.schemas.base import Answer

Status = Literal["healthy", "degraded", "unhealthy"]


class Live(Answer):
    status: Literal["ok"]


class Ready(Answer):
    status: Literal["ready"]


class NotReady(Answer):
    status: Literal["not_ready"]
    detail: str = Field(description="what is down")


class Reachable(Answer):
    name: Literal["database", "temporal"]
    status: Literal["healthy"]
    latency_ms: float
    message: str


class Unreachable(Answer):
    name: Literal["database", "temporal"]
    status: Literal["unhealthy"]
    message: str


class Agents(Answer):
    name: Literal["agents"]
    status: Literal["healthy", "degraded"]
    message: str
    online: int
    total: int


class SecretsProviderState(Answer):
    name: Literal["env", "file", "aws", "vault"]
    status: Literal["healthy", "unhealthy"]


class Secrets(Answer):
    name: Literal["secrets"]
    status: Literal["healthy", "unhealthy"]
    message: str
    providers: list[SecretsProviderState] = Field(description="each configured secrets provider, in the order asked")


class ProviderHealth(Answer):
    name: str = Field(description="the cloud provider (only configured ones are listed)")
    kind: Literal["provider"]
    status: Literal["healthy", "degraded"]
    message: str
    circuit: Literal["closed", "half_open", "open"]
    latency_ms: float | None = Field(None, description="of the live call (include_providers=true)")


class HealthReport(Answer):
    status: Status
    version: str
    uptime_seconds: float
    timestamp: datetime
    components: list[Reachable | Unreachable | Agents | Secrets | ProviderHealth] = Field(
        description="the database, Temporal, the agents, the secrets providers and each configured cloud provider")
