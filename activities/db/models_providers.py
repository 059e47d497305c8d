"""Per-provider settings (cost limit, where trainings run, webhooks, outbound HTTP), the trainings a
provider runs for jobs, webhook deliveries already applied, and each provider's circuit breaker."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from activities.db.models import utcnow


class ProviderConfig(SQLModel, table=True):
    provider: str = Field(primary_key=True)  # a job target (local, worker, auto) or a cloud provider name
    cost_limit_enabled: bool = False
    cost_limit_amount: float | None = None
    cost_limit_period: str = "monthly"  # daily | weekly | monthly
    cost_limit_action: str = "warn"  # warn | block
    # cloud providers only: what trainings run on, and how they report back
    version: str | None = None  # "owner/model:version-id" or "version-id" of the trainer
    destination: str | None = None  # "owner/model" the trained weights are pushed to
    webhook_url: str | None = None  # public URL of POST /api/webhooks/{provider}; none: polling only
    webhook_allowed_ips: list | None = Field(default=None, sa_column=Column(JSON, nullable=True))  # CIDRs
    polling_interval_seconds: float | None = None
    api_base_url: str | None = None
    # outbound HTTP overrides for this provider's calls (None: the process-wide settings)
    ssl_verify: bool | None = None
    ca_bundle_path: str | None = None
    proxy_url: str | None = None
    http_timeout: float | None = None
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by: str | None = None


class ProviderTraining(SQLModel, table=True):
    """The provider's run of one job, as last confirmed (a verified webhook or a poll)."""
    job_id: str = Field(primary_key=True)
    provider: str
    training_id: str | None = Field(default=None, index=True, unique=True)
    status: str = "creating"  # creating | starting | processing | succeeded | failed | canceled
    rank: int = 0  # how far the status is: an older report never moves a training backwards
    credential_source: str | None = None  # "user" | "global": which credential created it (never the value)
    logs_lines: int = 0  # lines of the provider's log already copied into the job's log
    output: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    error: str | None = None
    predict_time: float | None = None  # compute seconds the provider billed
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    cancel_requested_at: datetime | None = None


class WebhookReceipt(SQLModel, table=True):
    """A webhook delivery applied once: a retry with the same id is acknowledged and not applied again."""
    provider: str = Field(primary_key=True)
    webhook_id: str = Field(primary_key=True, max_length=255)
    training_id: str | None = None
    received_at: datetime = Field(default_factory=utcnow, index=True)


class ProviderCircuit(SQLModel, table=True):
    """Consecutive failures of calls to a provider; ``open`` refuses calls until ``retry_at``."""
    provider: str = Field(primary_key=True)
    state: str = "closed"  # closed | open | half_open
    consecutive_failures: int = 0
    failures_total: int = 0
    opened_at: datetime | None = None
    retry_at: datetime | None = None
    last_error: str | None = None
    updated_at: datetime = Field(default_factory=utcnow)
