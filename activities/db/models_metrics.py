"""The Prometheus export's configuration: one row, shared by every API replica."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from activities.db.models import utcnow


class MetricsConfig(SQLModel, table=True):
    id: int = Field(default=1, primary_key=True)  # always 1
    enabled: bool = False
    categories: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by: str | None = None
