"""Control-plane activities of the job workflow: evaluation, placement, transitions.

Each reads the job from the database and runs only for the job's own workflow run (``binding``).
The evaluation is where every policy is applied (``governance.policy``): it reads the submission the
API recorded, charges the job against daily/monthly quotas and cost limits in one serialised
transaction, freezes the config and records the verdict.
"""

from __future__ import annotations

import logging
from typing import Callable

from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.audit.trail import audit, emit_event
from activities.capacity import admission, placement
from activities.db.models import Job, utcnow
from activities.errors import DomainError
from activities.governance import policy
from activities.jobs import configs, jobs
from activities.observability.log_context import LogContext
from activities.settings import Settings
from activities.temporal.binding import bound_job
from workflows.contracts import (
    ERR_INVALID_SUBMISSION, TERMINAL_STATUSES, EvaluatedJob, JobSubmission, Placement, PlacementRequest, RunLimits,
    Transition,
)


def _refused(message: str) -> ApplicationError:
    return ApplicationError(message, type=ERR_INVALID_SUBMISSION, non_retryable=True)

log = logging.getLogger("simpletuner.worker_host.jobs")


class ControlActivities:
    def __init__(self, session_factory: Callable[[], Session], settings: Settings) -> None:
        self._session = session_factory
        self._settings = settings

    @property
    def limits(self) -> RunLimits:
        s = self._settings
        return RunLimits(max_attempts=s.job_max_attempts, heartbeat_timeout_seconds=s.heartbeat_timeout_seconds,
                         placement_recheck_seconds=s.placement_recheck_seconds,
                         dispatch_start_timeout_seconds=s.dispatch_start_timeout_seconds,
                         max_history_events=s.workflow_max_history_events)

    @activity.defn(name="evaluate_submission")
    def evaluate_submission(self, sub: JobSubmission) -> EvaluatedJob:
        """Evaluate the submission recorded for ``sub.job_id`` (nothing else of ``sub`` is believed)."""
        info = activity.info()
        with self._session() as session:
            job = session.get(Job, sub.job_id)
            why = self._not_evaluable(job, sub, info.workflow_id, info.workflow_run_id)
            if why is not None:
                audit(session, f"workflow:{info.workflow_id}", "job.evaluation_refused", "job", sub.job_id,
                      {"reason": why, "claimed_owner": sub.owner_name, "config_name": sub.config_name})
                session.commit()
                raise _refused(why)
            assert job is not None
            admission.settings(session, lock=True)  # one evaluation at a time: quotas are consumed atomically
            submission = policy.Submission(owner_id=job.owner_id, config_name=job.config_name, target=job.target,
                                           gpu_count=job.gpu_count, priority=job.priority, team=job.team_slug,
                                           job_id=job.id)
            try:
                verdict = policy.evaluate(session, submission, self._settings.cost.hourly_rates_usd,
                                          self._settings.approval_timeout_hours * 3600.0)
            except DomainError as exc:
                job.charge_state, job.workflow_run_id = "refused", info.workflow_run_id
                session.add(job)
                audit(session, "system:workflow", "job.refused", "job", job.id, {"reason": exc.detail})
                session.commit()
                raise _refused(exc.detail) from None
            self._record(session, job, verdict, info.workflow_run_id)
            session.commit()
            return EvaluatedJob(config=configs.to_spec(verdict.config), gpu_count=verdict.gpu_count,
                                cost_estimate_usd=verdict.cost_estimate_usd, approval=verdict.approval,
                                scope=verdict.scope, owner_name=verdict.owner.username, config_name=job.config_name,
                                target=job.target, limits=self.limits,
                                nexus_endpoint=self._settings.temporal.nexus_endpoint)

    @staticmethod
    def _not_evaluable(job: Job | None, sub: JobSubmission, workflow_id: str, run_id: str) -> str | None:
        if job is None:
            return f"job {sub.job_id} was not submitted through the API"
        if workflow_id != job.id:
            return f"job {job.id} can only be evaluated by its own workflow, not by {workflow_id!r}"
        if job.workflow_run_id not in (None, run_id):
            return f"job {job.id} was already evaluated by another run of its workflow"
        if job.status in TERMINAL_STATUSES:
            return f"job {job.id} is already {job.status}"
        if job.charge_state == "refused":
            return f"job {job.id} was already refused"
        return None

    @staticmethod
    def _record(session: Session, job: Job, verdict: policy.Verdict, run_id: str) -> None:
        first = job.evaluated_at is None
        job.frozen_config = configs.to_spec(verdict.config).model_dump()
        job.approval_requirement = verdict.approval.model_dump() if verdict.approval else None
        job.gpu_count, job.cost_estimate_usd = verdict.gpu_count, verdict.cost_estimate_usd
        job.hourly_rate_usd, job.gpu_hours_estimate = verdict.hourly_rate_usd, verdict.gpu_hours_estimate
        job.team_id, job.org_id = verdict.scope.team_id, verdict.scope.org_id
        job.charge_state, job.workflow_run_id, job.evaluated_at = "charged", run_id, job.evaluated_at or utcnow()
        job.warnings = [f.message for f in verdict.findings]
        session.add(job)
        if first:
            for finding in verdict.findings:
                emit_event(session, finding.event, job.id, job.status, {"message": finding.message})

    @activity.defn(name="resolve_placement")
    def resolve_placement(self, req: PlacementRequest) -> Placement:
        with self._session() as session:
            bound_job(session, req.job_id)
            try:
                return placement.resolve(session, req, self._settings.heartbeat_timeout_seconds)
            except DomainError as exc:
                raise _refused(exc.detail) from exc

    @activity.defn(name="record_transition")
    def record_transition(self, transition: Transition) -> None:
        with LogContext(job_id=transition.job_id, step=transition.status, attempt=transition.attempt or None):
            with self._session() as session:
                bound_job(session, transition.job_id)
                jobs.apply_transition(session, transition)
                session.commit()
            log.info("job %s is %s%s", transition.job_id, transition.status,
                     f" ({transition.queue_reason})" if transition.queue_reason else "")
