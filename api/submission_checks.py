"""Quota and cost-limit checks at submission: ``block`` refuses (403 naming the limit), ``warn``
records a warning on the job, ``notify`` records it and raises a ``quota.exceeded`` /
``cost.exceeded`` event. Concurrency is not checked here: admission holds the job instead."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from activities.db.models import Job, TrainingConfig
from activities.errors import Forbidden
from activities.governance import cost
from activities.governance import cost_limits
from activities.identity import orgs
from activities.governance import quotas
from activities.audit.trail import emit_event
from activities.identity.principals import Principal
from activities.settings import Settings


@dataclass(frozen=True)
class Finding:
    event: str  # quota.warning | quota.exceeded | cost.warning | cost.exceeded
    message: str


def check(session: Session, principal: Principal, team_slug: str | None, target: str, config: TrainingConfig,
          gpu_count: int | None, settings: Settings) -> list[Finding]:
    team, org = orgs.job_scope(session, principal.user_id, team_slug)
    gpus = gpu_count or config.gpu_count
    estimate = cost.estimate_usd(config.hardware_type, gpus, config.estimated_hours, settings.cost.hourly_rates_usd)
    gpu_hours = config.estimated_hours * gpus if config.estimated_hours is not None else None
    found: list[Finding] = []
    for f in quotas.check_submission(session, principal.user_id, principal.levels, team.id if team else None,
                                     org.id if org else None, estimate, gpu_hours):
        if f.action == "block":
            raise Forbidden(f"{f.message} (action block)")
        found.append(Finding("quota.exceeded" if f.action == "notify" else "quota.warning", f.message))
    warning = cost_limits.check_submission(session, target, estimate)
    if warning:
        found.append(Finding("cost.exceeded", warning))
    return found


def record(session: Session, job: Job, findings: list[Finding]) -> None:
    if not findings:
        return
    job.warnings = [f.message for f in findings]
    session.add(job)
    for f in findings:
        emit_event(session, f.event, job.id, job.status, {"message": f.message})
