"""What the queue API shows: the waiting line in order with positions and reasons, the admitted
jobs (each holding a slot) split into those running on an agent and those admitted but still waiting
for one (``waiting_for_agent``, with the placement's reason), counts, and one job's place."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from activities.paging import PageRequest, positional
from activities.capacity import admission
from activities.db.models import Job
from activities.db.models_queue import Admission


def entry(d: admission.Decision | None, a: Admission, job_status: str | None = None,
          placement_reason: str | None = None) -> dict[str, Any]:
    state, reason = a.state, (d.reason if d else None) if a.state == "waiting" else None
    if a.state == "admitted":
        state = "running" if job_status == "running" else "waiting_for_agent"
        reason = None if state == "running" else placement_reason or "admitted; waiting for an agent to take it"
    return {"job_id": a.job_id, "user": a.username, "user_id": a.user_id, "team": a.team_slug, "org": a.org_slug,
            "priority": admission.effective_priority(a), "priority_override": a.priority_override,
            "state": state, "position": d.position if d else None, "reason": reason,
            "enqueued_at": a.enqueued_at, "admitted_at": a.admitted_at}


def _admitted(session: Session, only_user: str | None) -> list[dict[str, Any]]:
    query = (select(Admission, Job.status, Job.queue_reason).join(Job, Job.id == Admission.job_id, isouter=True)
             .where(Admission.state == "admitted").order_by(Admission.admit_seq))
    if only_user is not None:
        query = query.where(Admission.user_id == only_user)
    return [entry(None, a, status, reason) for a, status, reason in session.exec(query)]


def snapshot(session: Session, only_user: str | None = None, page: PageRequest | None = None) -> dict[str, Any]:
    """The line (``waiting``, in admission order; paged when ``page``) and the jobs holding slots: on
    an agent (``running``) or admitted and waiting for one (``waiting_for_agent``); together at most
    as many as the concurrency limit lets in."""
    waiting = [entry(d, d.admission) for d in admission.plan(session)]
    if only_user is not None:
        waiting = [e for e in waiting if e["user_id"] == only_user]
    admitted = _admitted(session, only_user)
    held = {"running": [e for e in admitted if e["state"] == "running"],
            "waiting_for_agent": [e for e in admitted if e["state"] == "waiting_for_agent"]}
    if page is None:
        return {"waiting": waiting, **held}
    line = positional(waiting, page)
    return {"waiting": line.rows, **held, **line.fields()}


def stats(session: Session, only_user: str | None = None) -> dict[str, Any]:
    """Counts (of one user when ``only_user``): ``running`` = jobs holding a slot (admitted, on an
    agent or about to be; ``waiting_for_agent`` of them are not on one yet), ``waiting`` = jobs in
    the line; the limits; slots held per user (``running_by_user``)."""
    qs = admission.settings(session)
    counts_query = select(Admission.state, func.count()).group_by(Admission.state)
    by_user_query = select(Admission.username, func.count()).where(Admission.state == "admitted")
    if only_user is not None:
        counts_query = counts_query.where(Admission.user_id == only_user)
        by_user_query = by_user_query.where(Admission.user_id == only_user)
    counts = dict(session.exec(counts_query).all())
    by_user = dict(session.exec(by_user_query.group_by(Admission.username)).all())
    unplaced = (select(func.count()).select_from(Admission).join(Job, Job.id == Admission.job_id)
                .where(Admission.state == "admitted", Job.status != "running"))
    if only_user is not None:
        unplaced = unplaced.where(Admission.user_id == only_user)
    return {"running": counts.get("admitted", 0), "waiting": counts.get("waiting", 0),
            "waiting_for_agent": session.exec(unplaced).one(),
            "max_concurrent": qs.max_concurrent, "user_max_concurrent": qs.user_max_concurrent,
            "running_by_user": by_user}


def position(session: Session, job: Job) -> dict[str, Any]:
    row = session.get(Admission, job.id)
    if row is None:
        return {"job_id": job.id, "state": "not_queued", "status": job.status, "position": None,
                "reason": job.queue_reason}
    decision = next((d for d in admission.plan(session) if d.admission.job_id == job.id), None)
    return {"job_id": job.id, "status": job.status, **{k: v for k, v in entry(decision, row, job.status,
                                                                               job.queue_reason).items()
                                                       if k in ("state", "position", "reason", "priority")}}
