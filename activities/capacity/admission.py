"""Admission: which queued jobs may take a concurrency slot now.

Every change (enqueue, release, a new limit or priority) runs one *pass* in the caller's
transaction. The database serialises passes (SQLite ``BEGIN IMMEDIATE``; PostgreSQL locks the
queue-settings row), so no two passes can hand out the same slot and no limit is ever exceeded.

Order of the waiting line: priority first (admin > lead > researcher > viewer, or an admin's
override); within a priority, round-robin across users by start-time fair queueing — each job gets
a tag one above the later of its user's previous tag and the fair-share clock, so users take turns
and a burst from one user queues behind everyone else's next job — then FIFO. A job blocked by its own
user's, team's or org's limit does not hold back the jobs behind it; the global limit stops the pass.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from activities.db.models import utcnow
from activities.db.models_orgs import Quota
from activities.db.models_queue import Admission, QueueSettings
from activities.errors import Conflict, NotFound


@dataclass
class Decision:
    admission: Admission
    admit: bool
    reason: str | None = None  # why it waits
    position: int = 0  # 1 = next in line


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
    """Block-action ``concurrent_jobs`` quotas, loaded once per pass."""

    def __init__(self, session: Session) -> None:
        rows = session.exec(select(Quota).where(Quota.quota_type == "concurrent_jobs", Quota.action == "block"))
        self.by_scope = {(q.scope, q.scope_id): int(q.limit_value) for q in rows}

    def user(self, a: Admission) -> tuple[int, str] | None:
        if ("user", a.user_id) in self.by_scope:
            return self.by_scope[("user", a.user_id)], f"{a.username}'s concurrent_jobs quota"
        if a.level and ("level", a.level) in self.by_scope:
            return self.by_scope[("level", a.level)], f"the {a.level} level's concurrent_jobs quota"
        return None

    def of(self, scope: str, scope_id: str | None) -> int | None:
        return self.by_scope.get((scope, scope_id)) if scope_id else None


def plan(session: Session, lock: bool = False) -> list[Decision]:
    """The pass without writing: who would be admitted now, and why the others wait."""
    qs = settings(session, lock)
    admitted = list(session.exec(select(Admission).where(Admission.state == "admitted")))
    waiting = list(session.exec(select(Admission).where(Admission.state == "waiting")
                                .order_by(col(Admission.enqueued_seq))))
    total = len(admitted)
    per_user = Counter(a.user_id for a in admitted)
    per_team = Counter(a.team_id for a in admitted if a.team_id)
    per_org = Counter(a.org_id for a in admitted if a.org_id)
    order = sorted(waiting, key=lambda a: (-effective_priority(a), a.fair_tag, a.enqueued_seq))
    limits = _Limits(session)
    decisions: list[Decision] = []
    for position, a in enumerate(order, start=1):
        reason = _blocked(a, qs, limits, total, per_user, per_team, per_org)
        decisions.append(Decision(a, reason is None, reason, position))
        if reason is None:
            total += 1
            per_user[a.user_id] += 1
            if a.team_id:
                per_team[a.team_id] += 1
            if a.org_id:
                per_org[a.org_id] += 1
    return decisions


def _blocked(a: Admission, qs: QueueSettings, limits: _Limits, total: int, per_user: Counter, per_team: Counter,
             per_org: Counter) -> str | None:
    if qs.max_concurrent is not None and total >= qs.max_concurrent:
        return f"all {qs.max_concurrent} slots are taken (max_concurrent)"
    if qs.user_max_concurrent is not None and per_user[a.user_id] >= qs.user_max_concurrent:
        return f"{a.username} already runs {per_user[a.user_id]} job(s) (user_max_concurrent {qs.user_max_concurrent})"
    user_limit = limits.user(a)
    if user_limit is not None and per_user[a.user_id] >= user_limit[0]:
        return f"{user_limit[1]} ({user_limit[0]}) is reached"
    team_limit = limits.of("team", a.team_id)
    if team_limit is not None and per_team[a.team_id] >= team_limit:
        return f"team {a.team_slug or a.team_id} runs {per_team[a.team_id]} job(s) (concurrent_jobs quota {team_limit})"
    org_limit = limits.of("org", a.org_id)
    if org_limit is not None and per_org[a.org_id] >= org_limit:
        return f"org {a.org_slug or a.org_id} runs {per_org[a.org_id]} job(s) (concurrent_jobs quota {org_limit})"
    return None


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
    session.add(qs)
    return decisions


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
