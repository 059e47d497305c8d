"""Reading the job event stream (the SSE feed): events after a cursor, optionally of one job or one owner."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from activities.db.models import Job, JobEvent


def to_dict(event: JobEvent) -> dict[str, Any]:
    return {"id": event.id, "event_type": event.event_type, "job_id": event.job_id, "status": event.status,
            "data": event.data, "created_at": event.created_at}


def after(session: Session, cursor: int, job_id: str | None = None, owner_id: str | None = None,
          limit: int = 500) -> list[JobEvent]:
    """Events with an id above ``cursor`` in id order; ``owner_id`` keeps only that user's jobs' events."""
    query = select(JobEvent).where(JobEvent.id > cursor)
    if job_id:
        query = query.where(JobEvent.job_id == job_id)
    if owner_id is not None:
        query = query.where(col(JobEvent.job_id).in_(select(Job.id).where(Job.owner_id == owner_id)))
    return list(session.exec(query.order_by(JobEvent.id).limit(limit)))
