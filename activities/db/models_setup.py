"""The guided set-up's progress: one row per step an admin completed or skipped."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from activities.db.models import utcnow


class SetupStep(SQLModel, table=True):
    step: str = Field(primary_key=True, max_length=32)
    state: str = Field(max_length=16)  # done | skipped
    updated_by: str
    updated_at: datetime = Field(default_factory=utcnow)
