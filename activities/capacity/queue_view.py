"""What the queue API shows: the waiting line in order with positions and reasons, the running set,
counts, and one job's place."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from activities.paging import PageRequest, positional
from activities.capacity import admission
from activities.db.models import Job
from activities.db.models_queue import Admission


def entry(d: admission.Decision | None, a: Admission) -> dict[str, Any]:
    return {"job_id": a.job_id, "user": a.username, "user_id": a.user_id, "team": a.team_slug, "org": a.org_slug,
            "priority": admission.effective_priority(a), "priority_override": a.priority_override,
            "state": a.state, "position": d.position if d else None,
            "reason": (d.reason if d else None) if a.state == "waiting" else None,
            "enqueued_at": a.enqueued_at, "admitted_at": a.admitted_at}


def snapshot(session: Session, only_user: str | None = None, page: PageRequest | None = None) -> dict[str, Any]:
    """The line (``waiting``, in admission order; paged when ``page``) and the jobs holding slots
    (``running``, at most as many as the concurrency limit lets run)."""
    waiting = [entry(d, d.admission) for d in admission.plan(session)]
    running = [entry(None, a) for a in session.exec(select(Admission).where(Admission.state == "admitted")
                                                     .order_by(Admission.admit_seq))]
    if only_user is not None:
        waiting = [e for e in waiting if e["user_id"] == only_user]
        running = [e for e in running if e["user_id"] == only_user]
    if page is None:
        return {"waiting": waiting, "running": running}
    line = positional(waiting, page)
    return {"waiting": line.rows, "running": running, **line.fields()}


def stats(session: Session, only_user: str | None = None) -> dict[str, Any]:
    """Counts of running and waiting jobs (of one user when ``only_user``), the limits, running per user."""
    qs = admission.settings(session)
    counts_query = select(Admission.state, func.count()).group_by(Admission.state)
    by_user_query = select(Admission.username, func.count()).where(Admission.state == "admitted")
    if only_user is not None:
        counts_query = counts_query.where(Admission.user_id == only_user)
        by_user_query = by_user_query.where(Admission.user_id == only_user)
    counts = dict(session.exec(counts_query).all())
    by_user = dict(session.exec(by_user_query.group_by(Admission.username)).all())
    return {"running": counts.get("admitted", 0), "waiting": counts.get("waiting", 0),
            "max_concurrent": qs.max_concurrent, "user_max_concurrent": qs.user_max_concurrent,
            "running_by_user": by_user}


def position(session: Session, job: Job) -> dict[str, Any]:
    row = session.get(Admission, job.id)
    if row is None:
        return {"job_id": job.id, "state": "not_queued", "status": job.status, "position": None,
                "reason": job.queue_reason}
    decision = next((d for d in admission.plan(session) if d.admission.job_id == job.id), None)
    return {"job_id": job.id, "status": job.status, **{k: v for k, v in entry(decision, row).items()
                                                       if k in ("state", "position", "reason", "priority")}}
