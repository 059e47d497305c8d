"""Admission: which queued jobs may take a concurrency slot now.

Every change (enqueue, release, a new limit or priority) runs one *pass* in the caller's
transaction. The database serialises passes (SQLite ``BEGIN IMMEDIATE``; PostgreSQL locks the
queue-settings row), so no two passes can hand out the same slot and no limit is ever exceeded.

Order of the waiting line: holders of ``job.bypass.queue`` first (ahead of the line, never past a
limit), then priority (admin > lead > researcher > viewer, or an admin's override); within a priority, round-robin across users by start-time fair queueing — each job gets
a tag one above the later of its user's previous tag and the fair-share clock, so users take turns
and a burst from one user queues behind everyone else's next job — then FIFO. A job blocked by its own
user's, team's or org's limit does not hold back the jobs behind it; the global limit stops the pass.

Limits come from one function, ``quota_limits.concurrency_limits`` (the queue's global and per-user
limits and the ``concurrent_jobs`` quotas). A ``block`` limit holds the job back; past a ``warn`` or
``notify`` limit it is admitted with a warning on the job (``notify`` also raises ``quota.exceeded``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func
from sqlmodel import Session, col, select

from activities.audit.trail import emit_event
from activities.db.models import Job, utcnow
from activities.db.models_queue import Admission, QueueSettings
from activities.errors import Conflict, NotFound
from activities.governance.quota_limits import EffectiveLimit, concurrency_limits
from activities.identity.principals import levels_of


@dataclass
class Decision:
    admission: Admission
    admit: bool
    reason: str | None = None  # why it waits
    position: int = 0  # 1 = next in line
    findings: list[tuple[str, str]] = field(default_factory=list)  # (warn | notify, message): admitted past a soft limit


def settings(session: Session, lock: bool = False) -> QueueSettings:
    query = select(QueueSettings).where(QueueSettings.id == 1)
    row = session.exec(query.with_for_update() if lock else query).first()
    if row is None:
        row = QueueSettings(id=1)
        session.add(row)
        session.flush()
    return row


def _next_seq(row: QueueSettings) -> int:
    row.seq = (row.seq or 0) + 1
    return row.seq


class _Limits:
    """The concurrency limits of each waiting job (``quota_limits.concurrency_limits``), loaded once
    per user/team/org within a pass."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._cache: dict[tuple, list[EffectiveLimit]] = {}
        self._levels: dict[str, tuple[str, ...]] = {}

    def of(self, a: Admission) -> list[EffectiveLimit]:
        key = (a.user_id, a.team_id, a.org_id)
        if key not in self._cache:
            if a.user_id not in self._levels:
                self._levels[a.user_id] = levels_of(self.session, a.user_id) or ((a.level,) if a.level else ())
            self._cache[key] = concurrency_limits(self.session, a.user_id, self._levels[a.user_id], a.team_id, a.org_id)
        return self._cache[key]


def _scope_key(limit: EffectiveLimit) -> tuple[str, str]:
    return limit.usage_scope, limit.usage_scope_id


def _keys(a: Admission) -> list[tuple[str, str]]:
    keys = [("global", ""), ("user", a.user_id)]
    keys += [("team", a.team_id)] if a.team_id else []
    return keys + ([("org", a.org_id)] if a.org_id else [])


def _describe(limit: EffectiveLimit, running: int, a: Admission) -> str:
    if limit.scope == "global":
        return f"all {limit.limit} slots are taken (max_concurrent)"
    if limit.scope == "queue":
        return f"{a.username} already runs {running} job(s) (user_max_concurrent {limit.limit})"
    if limit.usage_scope in ("team", "org"):
        name = (a.team_slug if limit.usage_scope == "team" else a.org_slug) or limit.usage_scope_id
        return f"{limit.usage_scope} {name} runs {running} job(s) (concurrent_jobs quota {limit.limit})"
    if limit.scope == "level":
        return f"the {limit.scope_id} level's concurrent_jobs quota ({limit.limit}) is reached"
    return f"{a.username}'s concurrent_jobs quota ({limit.limit}) is reached"


def plan(session: Session, lock: bool = False) -> list[Decision]:
    """The pass without writing: who would be admitted now, and why the others wait."""
    settings(session, lock)
    admitted = list(session.exec(select(Admission).where(Admission.state == "admitted")))
    waiting = list(session.exec(select(Admission).where(Admission.state == "waiting")
                                .order_by(col(Admission.enqueued_seq))))
    running: Counter = Counter(key for a in admitted for key in _keys(a))
    order = sorted(waiting, key=lambda a: (not a.bypass_queue, -effective_priority(a), a.fair_tag, a.enqueued_seq))
    limits = _Limits(session)
    decisions: list[Decision] = []
    for position, a in enumerate(order, start=1):
        decision = Decision(a, True, None, position)
        for limit in limits.of(a):
            now = running[_scope_key(limit)]
            if now < limit.limit:
                continue
            if limit.action == "block":
                decision.admit, decision.reason = False, _describe(limit, now, a)
                break
            decision.findings.append((limit.action, f"concurrent_jobs quota of {limit.source} ({limit.limit}) is "
                                                    f"exceeded: {now + 1} jobs with this one"))
        decisions.append(decision)
        if decision.admit:
            running.update(_keys(a))
    return decisions


def effective_priority(a: Admission) -> int:
    return a.priority_override if a.priority_override is not None else a.priority


def admit_pass(session: Session) -> list[Decision]:
    """Admit everything that fits now. Returns the pass's decisions: the newly admitted (``admit``;
    their workflows still to be told) and, for every job left waiting, why."""
    decisions = plan(session, lock=True)
    qs = settings(session)
    now = utcnow()
    for d in decisions:
        if d.admit:
            d.admission.state, d.admission.admitted_at = "admitted", now
            d.admission.admit_seq = _next_seq(qs)
            qs.virtual_time = max(qs.virtual_time or 0.0, d.admission.fair_tag)
            session.add(d.admission)
            _record_findings(session, d)
    session.add(qs)
    return decisions


def _record_findings(session: Session, d: Decision) -> None:
    if not d.findings:
        return
    job = session.get(Job, d.admission.job_id)
    if job is not None:
        job.warnings = [*(job.warnings or []), *(message for _, message in d.findings)]
        session.add(job)
    for action, message in d.findings:
        emit_event(session, "quota.exceeded" if action == "notify" else "quota.warning", d.admission.job_id,
                   job.status if job else None, {"message": message})


def enqueue(session: Session, row: Admission) -> Admission:
    """Put the job in line once (a retried activity finds its row)."""
    existing = session.get(Admission, row.job_id)
    if existing is not None:
        return existing
    qs = settings(session, lock=True)
    row.enqueued_seq = _next_seq(qs)
    last = session.exec(select(func.max(Admission.fair_tag)).where(Admission.user_id == row.user_id,
                                                                   Admission.state != "released")).one()
    row.fair_tag = max(qs.virtual_time or 0.0, last or 0.0) + 1.0
    session.add(row)
    session.add(qs)
    session.flush()
    return row


def release(session: Session, job_id: str) -> bool:
    """Give the job's slot back (or take it out of line). False when it held nothing."""
    row = session.get(Admission, job_id)
    if row is None or row.state == "released":
        return False
    qs = settings(session, lock=True)
    row.state, row.released_at, row.release_seq = "released", utcnow(), _next_seq(qs)
    session.add(row)
    session.add(qs)
    return True


def unnotified(session: Session) -> list[Admission]:
    return list(session.exec(select(Admission).where(Admission.state == "admitted",
                                                     Admission.notified == False)))  # noqa: E712


def mark_notified(session: Session, job_ids: list[str]) -> None:
    for job_id in job_ids:
        row = session.get(Admission, job_id)
        if row is not None:
            row.notified = True
            session.add(row)


def set_limits(session: Session, max_concurrent: int | None, user_max_concurrent: int | None,
               actor: str) -> QueueSettings:
    qs = settings(session, lock=True)
    qs.max_concurrent, qs.user_max_concurrent = max_concurrent, user_max_concurrent
    qs.updated_at, qs.updated_by = utcnow(), actor
    session.add(qs)
    return qs


def set_priority(session: Session, job_id: str, priority: int | None) -> Admission:
    row = session.get(Admission, job_id)
    if row is None:
        raise NotFound(f"job {job_id!r} is not in the queue")
    if row.state != "waiting":
        raise Conflict(f"job {job_id} is already {row.state}; only waiting jobs can be reprioritised")
    row.priority_override = priority
    session.add(row)
    return row
