"""Current usage of each quota type by a user, a team or an organization.

Concurrency counts admitted jobs (a slot is held from admission to release). Daily and monthly
figures count jobs created in the current UTC day or month: finished jobs with what they actually
used, jobs still in flight with their estimate (committed spend), jobs that never ran with nothing.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from sqlalchemy import func
from sqlmodel import Session, col, select

from activities.db.models import Job
from activities.db.models_queue import Admission

Scope = Literal["user", "team", "org"]
QUOTA_TYPES = ("concurrent_jobs", "daily_jobs", "monthly_cost_usd", "gpu_hours_monthly")
IN_FLIGHT = ("pending", "pending_approval", "queued", "running")


def day_start(now: datetime | None = None) -> datetime:
    now = now or datetime.now(timezone.utc)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(now: datetime | None = None) -> datetime:
    return day_start(now).replace(day=1)


def _job_scope(scope: Scope, scope_id: str):
    return {"user": Job.owner_id, "team": Job.team_id, "org": Job.org_id}[scope] == scope_id


def concurrent_jobs(session: Session, scope: Scope, scope_id: str) -> int:
    column = {"user": Admission.user_id, "team": Admission.team_id, "org": Admission.org_id}[scope]
    return session.exec(select(func.count()).select_from(Admission)
                        .where(Admission.state == "admitted", column == scope_id)).one()


def daily_jobs(session: Session, scope: Scope, scope_id: str, exclude_job: str | None = None) -> int:
    query = select(func.count()).select_from(Job).where(_job_scope(scope, scope_id), Job.created_at >= day_start())
    if exclude_job:
        query = query.where(Job.id != exclude_job)
    return session.exec(query).one()


def _committed(session: Session, scope: Scope, scope_id: str, actual, estimate) -> float:
    since = month_start()
    done = session.exec(select(func.coalesce(func.sum(actual), 0.0))
                        .where(_job_scope(scope, scope_id), Job.created_at >= since)).one()
    flying = session.exec(select(func.coalesce(func.sum(estimate), 0.0))
                          .where(_job_scope(scope, scope_id), Job.created_at >= since,
                                 col(Job.status).in_(IN_FLIGHT))).one()
    return round(float(done) + float(flying), 4)


def monthly_cost_usd(session: Session, scope: Scope, scope_id: str) -> float:
    return _committed(session, scope, scope_id, Job.cost_usd, Job.cost_estimate_usd)


def gpu_hours_monthly(session: Session, scope: Scope, scope_id: str) -> float:
    return _committed(session, scope, scope_id, Job.gpu_hours, Job.gpu_hours_estimate)


def usage(session: Session, quota_type: str, scope: Scope, scope_id: str) -> float:
    return {"concurrent_jobs": concurrent_jobs, "daily_jobs": daily_jobs, "monthly_cost_usd": monthly_cost_usd,
            "gpu_hours_monthly": gpu_hours_monthly}[quota_type](session, scope, scope_id)
