"""Every policy a submission must pass, in one place: the owner's account, the config, resource rules,
the team/org scope, the cost estimate, quotas, provider cost limits and approval rules.

The job workflow's evaluation activity calls ``evaluate`` with the submission the API recorded (so a
workflow started by anyone is governed the same way, from the database), inside the transaction that
charges the job; the API calls it first only to answer 4xx at once. ``Refused`` names the reason.
Findings of ``warn``/``notify`` limits are returned, not raised: the job goes on with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session

from activities.db.models import Job, TrainingConfig, User
from activities.db.models_orgs import Organization, Team
from activities.errors import Forbidden, InvalidInput
from activities.governance import approval_match, cost, cost_limits, quota_limits, resource_rules
from activities.identity import orgs
from activities.identity.permissions import LEVEL_PRIORITY, effective_permissions, highest_level
from activities.identity.principals import levels_of, overrides_of
from activities.jobs import configs
from workflows.contracts import ApprovalRequirement, JobScope


@dataclass(frozen=True)
class Finding:
    event: str  # quota.warning | quota.exceeded | cost.warning | cost.exceeded
    message: str


@dataclass(frozen=True)
class Submission:
    """What was submitted, as the API recorded it (``job_id`` None for a check before the row exists)."""
    owner_id: str
    config_name: str
    target: str
    gpu_count: int | None = None
    priority: int | None = None
    team: str | None = None
    job_id: str | None = None


@dataclass
class Verdict:
    owner: User
    config: TrainingConfig
    gpu_count: int
    cost_estimate_usd: float | None
    hourly_rate_usd: float | None
    gpu_hours_estimate: float | None
    scope: JobScope
    bypass_queue: bool
    approval: ApprovalRequirement | None
    findings: list[Finding] = field(default_factory=list)


def evaluate(session: Session, sub: Submission, hourly_rates: dict[str, float] | None,
             approval_timeout_s: float, early: bool = False) -> Verdict:
    """The verdict on ``sub``; raises ``Forbidden``/``InvalidInput`` naming why it is refused.
    ``early``: the API's check before the job is recorded, which also counts jobs not evaluated yet
    against daily/monthly limits (the evaluation counts only charged ones, atomically)."""
    owner = session.get(User, sub.owner_id)
    if owner is None or not owner.is_active:
        raise Forbidden(f"the account that submitted this job ({sub.owner_id}) is unknown or disabled")
    levels = levels_of(session, owner.id)
    permissions = effective_permissions(levels, overrides_of(session, owner.id))
    if "job.submit" not in permissions:
        raise Forbidden(f"{owner.username} may not submit jobs (missing permission 'job.submit')")
    config = configs.find(session, sub.config_name)
    if config is None:
        raise InvalidInput(f"unknown config_name {sub.config_name!r}")
    if not config.command:
        raise InvalidInput(f"config {config.name!r} has no command to run")
    resource_rules.check(session, levels, "config", config.name)
    resource_rules.check(session, levels, "hardware", config.hardware_type)
    resource_rules.check(session, levels, "provider", sub.target)
    team, org = orgs.job_scope(session, owner.id, sub.team)
    gpus = sub.gpu_count or config.gpu_count
    estimate = cost.estimate_usd(config.hardware_type, gpus, config.estimated_hours, hourly_rates)
    hours = round(config.estimated_hours * gpus, 4) if config.estimated_hours is not None else None
    findings = _limits(session, sub, owner, levels, team.id if team else None, org.id if org else None, estimate,
                       hours, early)
    scope = _scope(owner, levels, permissions, team, org, sub.priority)
    scope.warnings = [f.message for f in findings]
    approval = None
    if "job.bypass.approval" not in permissions:
        approval = _approval(session, sub, owner, levels, config, estimate, approval_timeout_s)
    return Verdict(owner=owner, config=config, gpu_count=gpus, cost_estimate_usd=estimate,
                   hourly_rate_usd=cost.hourly_rate(config.hardware_type, hourly_rates), gpu_hours_estimate=hours,
                   scope=scope, bypass_queue="job.bypass.queue" in permissions, approval=approval, findings=findings)


def _scope(owner: User, levels: tuple[str, ...], permissions: frozenset[str], team: Team | None,
           org: Organization | None, requested_priority: int | None) -> JobScope:
    level = highest_level(levels)
    priority = LEVEL_PRIORITY.get(level or "", 0)
    if requested_priority is not None and "job.priority.high" in permissions:
        priority = requested_priority
    return JobScope(user_id=owner.id, username=owner.username, level=level, priority=priority,
                    team_id=team.id if team else None, team_slug=team.slug if team else None,
                    org_id=org.id if org else None, org_slug=org.slug if org else None)


def queue_scope(session: Session, job: Job) -> tuple[JobScope, bool]:
    """Where an evaluated job stands in the waiting line, from the database: its owner's level (or the
    priority they asked for, with ``job.priority.high``), the team and org it was charged to, and
    whether the owner holds ``job.bypass.queue``."""
    owner = session.get(User, job.owner_id)
    if owner is None:
        raise Forbidden(f"the owner of job {job.id} no longer exists")
    levels = levels_of(session, owner.id)
    permissions = effective_permissions(levels, overrides_of(session, owner.id))
    team = session.get(Team, job.team_id) if job.team_id else None
    org = session.get(Organization, job.org_id) if job.org_id else None
    return _scope(owner, levels, permissions, team, org, job.priority), "job.bypass.queue" in permissions


def _limits(session: Session, sub: Submission, owner: User, levels: tuple[str, ...], team_id: str | None,
            org_id: str | None, estimate: float | None, hours: float | None, early: bool) -> list[Finding]:
    """Quotas and provider cost limits: ``block`` refuses, ``warn``/``notify`` become findings."""
    found: list[Finding] = []
    for f in quota_limits.check_submission(session, owner.id, levels, team_id, org_id, estimate, hours,
                                           exclude_job=sub.job_id, with_pending=early):
        if f.action == "block":
            raise Forbidden(f"{f.message} (action block)")
        found.append(Finding("quota.exceeded" if f.action == "notify" else "quota.warning", f.message))
    warning = cost_limits.check_submission(session, sub.target, estimate, exclude_job=sub.job_id,
                                           with_pending=early)
    if warning:
        found.append(Finding("cost.exceeded", warning))
    return found


def _approval(session: Session, sub: Submission, owner: User, levels: tuple[str, ...], config: TrainingConfig,
              estimate: float | None, timeout_s: float) -> ApprovalRequirement | None:
    ctx = approval_match.RuleContext(job_id=sub.job_id or "", user_id=owner.id, levels=levels,
                                     cost_estimate_usd=estimate, hardware_type=config.hardware_type,
                                     config_name=config.name, provider=sub.target)
    rule = approval_match.evaluate(session, ctx)
    if rule is None:
        return None
    return ApprovalRequirement(rule_id=rule.id, rule_name=rule.name, reason=approval_match.describe_match(rule, ctx),
                               required_level=rule.required_approver_level, cost_estimate_usd=estimate,
                               timeout_seconds=timeout_s)
