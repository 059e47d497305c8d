"""Resource rules (enterprise guide section 9): allow/deny globs per level."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from activities.db.models import utcnow


class ResourceRule(SQLModel, table=True):
    id: str = Field(primary_key=True)
    level: str = Field(index=True)
    resource_type: str  # config | hardware | provider
    pattern: str
    action: str  # allow | deny
    description: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
