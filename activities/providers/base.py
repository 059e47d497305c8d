"""What a cloud provider implements: create a training, read it, cancel it, verify and read a webhook,
and the actual cost of a finished training. A new provider is one module registered in ``registry``.

Statuses are the provider's own; ``STATUS_TO_JOB`` maps them to a job's, and ``rank`` orders them so
that a late report (an older webhook, a slow poll) never moves a training backwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

import httpx

from activities.errors import DomainError


class ProviderCallError(DomainError):
    """A call to the provider failed in a way worth retrying (unreachable, 5xx, 429, timeout): it counts
    against the circuit breaker."""
    status_code = 502


class ProviderRefused(DomainError):
    """The provider answered that the request itself is wrong (4xx other than 429: a bad token, an
    unknown version). Retrying will not help; it does not count against the breaker."""
    status_code = 502


class WebhookRejected(DomainError):
    """A webhook that is not the provider's: bad or missing signature, or a timestamp too far off."""
    status_code = 401


@dataclass
class TrainingRequest:
    job_id: str
    version: str  # the trainer's version id (a model "owner/name" may precede it as "owner/name:version")
    destination: str | None
    input: dict[str, Any]
    webhook_url: str | None
    webhook_events: list[str] = field(default_factory=lambda: ["start", "output", "logs", "completed"])


@dataclass
class TrainingState:
    """A provider's view of one training, parsed from its answer or a webhook body."""
    training_id: str
    status: str
    logs: str = ""
    output: Any = None
    error: str | None = None
    predict_time: float | None = None  # compute seconds billed, known on terminal trainings
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class Connection:
    """How to reach the provider for one call: base URL, token and the outbound HTTP client to use."""
    base_url: str
    token: str
    client: httpx.AsyncClient


class CloudProvider(Protocol):
    name: str
    default_base_url: str
    terminal: frozenset[str]

    def job_status(self, status: str) -> str: ...

    def rank(self, status: str) -> int: ...

    async def create_training(self, conn: Connection, req: TrainingRequest) -> TrainingState: ...

    async def get_training(self, conn: Connection, training_id: str) -> TrainingState: ...

    async def cancel_training(self, conn: Connection, training_id: str) -> TrainingState: ...

    async def validate(self, conn: Connection) -> dict[str, Any]: ...

    async def webhook_secret(self, conn: Connection) -> str: ...

    def verify_webhook(self, secret: str, headers: Mapping[str, str], body: bytes, now: float) -> str: ...

    def parse_training(self, data: Mapping[str, Any]) -> TrainingState: ...

    def actual_cost_usd(self, state: TrainingState, hourly_rate_usd: float | None, gpu_count: int) -> float | None: ...
