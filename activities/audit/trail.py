"""Events (the job stream) and audit entries, added to the caller's session and transaction."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from activities.db.models import AuditEntry, JobEvent


def emit_event(session: Session, event_type: str, job_id: str | None = None, status: str | None = None,
               data: dict[str, Any] | None = None, transition_seq: int | None = None) -> JobEvent:
    event = JobEvent(job_id=job_id, event_type=event_type, status=status, data=data or {},
                     transition_seq=transition_seq)
    session.add(event)
    return event


def audit(session: Session, actor: str, action: str, target_type: str, target_id: str | None = None,
          details: dict[str, Any] | None = None, ip: str | None = None) -> AuditEntry:
    entry = AuditEntry(actor=actor, action=action, target_type=target_type, target_id=target_id,
                       details=details or {}, ip=ip)
    session.add(entry)
    return entry
