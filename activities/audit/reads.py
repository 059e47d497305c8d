"""Reading the audit trail: newest first, filtered by action, actor, target and time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from activities.paging import Page, PageRequest, keyset
from activities.db.models import AuditEntry, as_utc


def to_dict(entry: AuditEntry) -> dict[str, Any]:
    return {"id": entry.id, "actor": entry.actor, "action": entry.action, "target_type": entry.target_type,
            "target_id": entry.target_id, "ip": entry.ip, "details": entry.details, "created_at": entry.created_at}


def list_entries(session: Session, action: str | None = None, actor: str | None = None,
                 target_type: str | None = None, target_id: str | None = None, since: datetime | None = None,
                 until: datetime | None = None, page: PageRequest = PageRequest()) -> Page[AuditEntry]:
    query = select(AuditEntry)
    for column, value in ((AuditEntry.action, action), (AuditEntry.actor, actor),
                          (AuditEntry.target_type, target_type), (AuditEntry.target_id, target_id)):
        if value is not None:
            query = query.where(column == value)
    if since is not None:  # a time without a zone is UTC, like every time the API answers with
        query = query.where(col(AuditEntry.created_at) >= as_utc(since))
    if until is not None:
        query = query.where(col(AuditEntry.created_at) < as_utc(until))
    return keyset(session, query, [(col(AuditEntry.id), True)], page)
