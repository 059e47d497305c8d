"""Per-provider settings: the cost limit over a period."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from activities.db.models import utcnow


class ProviderConfig(SQLModel, table=True):
    provider: str = Field(primary_key=True)  # a job target (local, worker, auto) or a cloud provider name
    cost_limit_enabled: bool = False
    cost_limit_amount: float | None = None
    cost_limit_period: str = "monthly"  # daily | weekly | monthly
    cost_limit_action: str = "warn"  # warn | block
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by: str | None = None
