"""Answers of the audit log route: entries (``activities.audit.reads.to_dict``), newest first, paged."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from api.schemas.base import Answer, NextCursor, Total


class AuditEntry(Answer):
    id: int
    actor: str
    action: str
    target_type: str
    target_id: str | None
    ip: str | None
    details: dict[str, Any] = Field(description="what changed, by action (free-form)")
    created_at: datetime


class AuditPage(Answer):
    entries: list[AuditEntry]
    total: Total
    next_cursor: NextCursor
