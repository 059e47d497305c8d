"""Events (the job stream) and audit entries, added to the caller's session and transaction.

The event stream is read by id (``/api/events`` and the SSE stream resume after the last id seen), so
an event must never become visible after one with a higher id: a reader that already moved past it
would skip it. SQLite has one writer at a time, so ids commit in order there. PostgreSQL hands out ids
to concurrent transactions that may commit in any order, so events are not inserted when they are
emitted: they wait in the session and are inserted as the transaction commits, under a
transaction-scoped advisory lock. Event-writing transactions therefore take their ids and commit one
after the other (the lock is held only for the insert and the commit, and nothing else is locked after
it, so it cannot deadlock), and the commit also sends ``NOTIFY`` so each API's event hub wakes at once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event as sa_event, text
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from activities.db.models import AuditEntry, JobEvent

PENDING = "simpletuner.pending_events"
EVENTS_CHANNEL = "simpletuner_events"  # PostgreSQL NOTIFY channel: new events were committed
_ORDER_LOCK = 0x53544556  # the advisory lock key that orders event inserts ("STEV")


def emit_event(session: Session, event_type: str, job_id: str | None = None, status: str | None = None,
               data: dict[str, Any] | None = None, transition_seq: int | None = None) -> JobEvent:
    """An event written when ``session`` commits (and dropped if it rolls back)."""
    event = JobEvent(job_id=job_id, event_type=event_type, status=status, data=data or {},
                     transition_seq=transition_seq)
    if not session.in_transaction():
        session.begin()  # the events belong to this transaction: its rollback or close drops them
    session.info.setdefault(PENDING, []).append(event)
    return event


@sa_event.listens_for(OrmSession, "before_commit")
def _insert_pending_events(session: OrmSession) -> None:
    pending = session.info.pop(PENDING, None)
    if not pending:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ORDER_LOCK})
        session.add_all(pending)
        session.flush()
        session.execute(text(f"NOTIFY {EVENTS_CHANNEL}"))
    else:
        session.add_all(pending)


@sa_event.listens_for(OrmSession, "after_transaction_end")
def _drop_pending_events(session: OrmSession, transaction) -> None:
    if transaction.parent is None:  # rolled back or closed: its events go with it
        session.info.pop(PENDING, None)


def audit(session: Session, actor: str, action: str, target_type: str, target_id: str | None = None,
          details: dict[str, Any] | None = None, ip: str | None = None) -> AuditEntry:
    entry = AuditEntry(actor=actor, action=action, target_type=target_type, target_id=target_id,
                       details=details or {}, ip=ip)
    session.add(entry)
    return entry
