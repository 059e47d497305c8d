"""Control-plane activities run by the worker host: evaluation, placement, transitions."""

from __future__ import annotations

from typing import Callable

from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.db.models import Job
from activities.errors import DomainError, NotFound
from activities.governance import approval_rules
from activities.jobs import configs
from activities.jobs import jobs
from activities.identity import orgs
from activities.capacity import workers
from activities.governance import cost as cost_service
from activities.identity.permissions import LEVEL_PRIORITY, effective_permissions, highest_level
from activities.identity.principals import levels_of, overrides_of
from workflows.contracts import (
    ERR_INVALID_SUBMISSION, ApprovalRequirement, EvaluatedJob, JobScope, JobSubmission, Placement, PlacementRequest, Transition,
)


class ControlActivities:
    def __init__(self, session_factory: Callable[[], Session], heartbeat_timeout_s: float,
                 approval_timeout_hours: float = 24.0, hourly_rates: dict[str, float] | None = None) -> None:
        self._session = session_factory
        self._timeout = heartbeat_timeout_s
        self._approval_timeout_s = approval_timeout_hours * 3600.0
        self._rates = hourly_rates or {}

    @activity.defn(name="evaluate_submission")
    def evaluate_submission(self, sub: JobSubmission) -> EvaluatedJob:
        """Resolve and freeze the training config; make sure the job row exists."""
        with self._session() as session:
            try:
                config = configs.get(session, sub.config_name)
            except NotFound as exc:
                raise ApplicationError(exc.detail, type=ERR_INVALID_SUBMISSION, non_retryable=True) from exc
            if not config.command:
                raise ApplicationError(f"config {config.name!r} has no command to run", type=ERR_INVALID_SUBMISSION,
                                       non_retryable=True)
            if session.get(Job, sub.job_id) is None:  # the API died between start and insert
                jobs.create_pending(session, sub)
                session.commit()
            gpu_count = sub.gpu_count or config.gpu_count
            cost = cost_service.estimate_usd(config.hardware_type, gpu_count, config.estimated_hours, self._rates)
            try:
                scope = self._scope(session, sub)
            except DomainError as exc:
                raise ApplicationError(exc.detail, type=ERR_INVALID_SUBMISSION, non_retryable=True) from exc
            self._record_estimates(session, sub.job_id, scope, config, gpu_count, cost)
            approval = self._approval_needed(session, sub, config, cost)
            session.commit()
            return EvaluatedJob(config=configs.to_spec(config), gpu_count=gpu_count, cost_estimate_usd=cost,
                                approval=approval, scope=scope)

    def _scope(self, session: Session, sub: JobSubmission) -> JobScope:
        """Who the job is charged to (team, org) and its queue priority."""
        levels = levels_of(session, sub.owner_id)
        level = highest_level(levels)
        priority = LEVEL_PRIORITY.get(level or "", 0)
        if sub.priority is not None and "job.priority.high" in effective_permissions(levels, overrides_of(session, sub.owner_id)):
            priority = sub.priority
        team, org = orgs.job_scope(session, sub.owner_id, sub.team)
        return JobScope(user_id=sub.owner_id, username=sub.owner_name, level=level, priority=priority,
                        team_id=team.id if team else None, team_slug=team.slug if team else None,
                        org_id=org.id if org else None, org_slug=org.slug if org else None)

    def _record_estimates(self, session: Session, job_id: str, scope: JobScope, config, gpu_count: int,
                          cost: float | None) -> None:
        job = session.get(Job, job_id)
        if job is None:
            return
        job.team_id, job.org_id, job.cost_estimate_usd, job.gpu_count = scope.team_id, scope.org_id, cost, gpu_count
        job.hourly_rate_usd = cost_service.hourly_rate(config.hardware_type, self._rates)
        job.gpu_hours_estimate = (round(config.estimated_hours * gpu_count, 4)
                                  if config.estimated_hours is not None else None)
        session.add(job)

    def _approval_needed(self, session: Session, sub: JobSubmission, config, cost: float | None
                         ) -> ApprovalRequirement | None:
        """First matching approval rule, unless the submitter may bypass approval."""
        levels = levels_of(session, sub.owner_id)
        if "job.bypass.approval" in effective_permissions(levels, overrides_of(session, sub.owner_id)):
            return None
        ctx = approval_rules.RuleContext(job_id=sub.job_id, user_id=sub.owner_id, levels=levels,
                                         cost_estimate_usd=cost, hardware_type=config.hardware_type,
                                         config_name=config.name, provider=sub.target)
        rule = approval_rules.evaluate(session, ctx)
        if rule is None:
            return None
        return ApprovalRequirement(rule_id=rule.id, rule_name=rule.name, reason=approval_rules.describe_match(rule, ctx),
                                   required_level=rule.required_approver_level, cost_estimate_usd=cost,
                                   timeout_seconds=self._approval_timeout_s)

    @activity.defn(name="resolve_placement")
    def resolve_placement(self, req: PlacementRequest) -> Placement:
        with self._session() as session:
            try:
                return workers.resolve_placement(session, req, self._timeout)
            except DomainError as exc:
                raise ApplicationError(exc.detail, type=ERR_INVALID_SUBMISSION, non_retryable=True) from exc

    @activity.defn(name="record_transition")
    def record_transition(self, transition: Transition) -> None:
        with self._session() as session:
            jobs.apply_transition(session, transition)
            session.commit()
