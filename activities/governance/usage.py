"""Current usage of each quota type by a user, a team or an organization.

Concurrency counts admitted jobs (a slot is held from admission to release). Daily and monthly
figures count the jobs their evaluation charged (``Job.charge_state``), created in the current UTC
day or month: finished jobs with what they actually used, jobs still in flight with their estimate
(committed spend), jobs that never ran with nothing. A job being evaluated is left out
(``exclude_job``) so that its own check adds it exactly once. ``with_pending`` also counts jobs
recorded but not evaluated yet (the API's early check and usage reports: the stricter answer).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from sqlalchemy import func
from sqlmodel import Session, col, select

from activities.db.models import Job
from activities.db.models_queue import Admission

Scope = Literal["user", "team", "org", "global"]
QUOTA_TYPES = ("concurrent_jobs", "daily_jobs", "monthly_cost_usd", "gpu_hours_monthly")
IN_FLIGHT = ("pending", "pending_approval", "queued", "running")


def day_start(now: datetime | None = None) -> datetime:
    now = now or datetime.now(timezone.utc)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(now: datetime | None = None) -> datetime:
    return day_start(now).replace(day=1)


CHARGED = "charged"


def _charged(scope: Scope, scope_id: str, exclude_job: str | None, with_pending: bool = False):
    states = (CHARGED, "pending") if with_pending else (CHARGED,)
    clauses = [{"user": Job.owner_id, "team": Job.team_id, "org": Job.org_id}[scope] == scope_id,
               col(Job.charge_state).in_(states)]
    if exclude_job:
        clauses.append(Job.id != exclude_job)
    return clauses


def concurrent_jobs(session: Session, scope: Scope, scope_id: str) -> int:
    query = select(func.count()).select_from(Admission).where(Admission.state == "admitted")
    if scope != "global":
        column = {"user": Admission.user_id, "team": Admission.team_id, "org": Admission.org_id}[scope]
        query = query.where(column == scope_id)
    return session.exec(query).one()


def daily_jobs(session: Session, scope: Scope, scope_id: str, exclude_job: str | None = None,
               with_pending: bool = False) -> int:
    return session.exec(select(func.count()).select_from(Job)
                        .where(*_charged(scope, scope_id, exclude_job, with_pending),
                               Job.created_at >= day_start())).one()


def _committed(session: Session, scope: Scope, scope_id: str, actual, estimate, exclude_job: str | None,
               with_pending: bool) -> float:
    since = month_start()
    where = (*_charged(scope, scope_id, exclude_job, with_pending), Job.created_at >= since)
    done = session.exec(select(func.coalesce(func.sum(actual), 0.0)).where(*where)).one()
    flying = session.exec(select(func.coalesce(func.sum(estimate), 0.0))
                          .where(*where, col(Job.status).in_(IN_FLIGHT))).one()
    return round(float(done) + float(flying), 4)


def monthly_cost_usd(session: Session, scope: Scope, scope_id: str, exclude_job: str | None = None,
                     with_pending: bool = False) -> float:
    return _committed(session, scope, scope_id, Job.cost_usd, Job.cost_estimate_usd, exclude_job, with_pending)


def gpu_hours_monthly(session: Session, scope: Scope, scope_id: str, exclude_job: str | None = None,
                      with_pending: bool = False) -> float:
    return _committed(session, scope, scope_id, Job.gpu_hours, Job.gpu_hours_estimate, exclude_job, with_pending)


def usage(session: Session, quota_type: str, scope: Scope, scope_id: str, exclude_job: str | None = None,
          with_pending: bool = False) -> float:
    if quota_type == "concurrent_jobs":
        return concurrent_jobs(session, scope, scope_id)
    return {"daily_jobs": daily_jobs, "monthly_cost_usd": monthly_cost_usd,
            "gpu_hours_monthly": gpu_hours_monthly}[quota_type](session, scope, scope_id, exclude_job, with_pending)
