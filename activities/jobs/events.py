"""Reading the job event stream (the SSE feed): events after a cursor, optionally of one job or one owner."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from activities.db.models import Job, JobEvent


def to_dict(event: JobEvent) -> dict[str, Any]:
    return {"id": event.id, "event_type": event.event_type, "job_id": event.job_id, "status": event.status,
            "data": event.data, "created_at": event.created_at}


PAGE = 500


def after(session: Session, cursor: int, job_id: str | None = None, owner_id: str | None = None,
          limit: int = PAGE) -> list[JobEvent]:
    """Events with an id above ``cursor`` in id order; ``owner_id`` keeps only that user's jobs' events."""
    query = select(JobEvent).where(JobEvent.id > cursor)
    if job_id:
        query = query.where(JobEvent.job_id == job_id)
    if owner_id is not None:
        query = query.where(col(JobEvent.job_id).in_(select(Job.id).where(Job.owner_id == owner_id)))
    return list(session.exec(query.order_by(JobEvent.id).limit(limit)))


def latest_id(session: Session) -> int:
    return session.exec(select(func.max(JobEvent.id))).one() or 0


def after_with_owners(session: Session, cursor: int, limit: int = 500) -> list[tuple[JobEvent, str | None]]:
    """Every event above ``cursor`` in id order, each with its job's owner (for the per-process hub)."""
    query = (select(JobEvent, Job.owner_id).join(Job, col(Job.id) == col(JobEvent.job_id), isouter=True)
             .where(JobEvent.id > cursor).order_by(JobEvent.id).limit(limit))
    return [(event, owner) for event, owner in session.exec(query)]
