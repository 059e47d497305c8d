"""Control-plane activities run by the worker host: evaluation, placement, transitions."""

from __future__ import annotations

from typing import Callable

from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.db.models import Job
from activities.errors import DomainError, NotFound
from activities.services import approval_rules, configs, jobs, workers
from activities.services import cost as cost_service
from activities.services.permissions import effective_permissions
from activities.services.principals import levels_of, overrides_of
from workflows.contracts import (
    ERR_INVALID_SUBMISSION, ApprovalRequirement, EvaluatedJob, JobSubmission, Placement, PlacementRequest, Transition,
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
            return EvaluatedJob(config=configs.to_spec(config), gpu_count=gpu_count, cost_estimate_usd=cost,
                                approval=self._approval_needed(session, sub, config, cost))

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
