"""Control-plane activities run by the worker host: evaluation, placement, transitions."""

from __future__ import annotations

from typing import Callable

from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.db.models import Job
from activities.errors import DomainError, NotFound
from activities.services import configs, jobs, workers
from workflows.contracts import (
    ERR_INVALID_SUBMISSION, EvaluatedJob, JobSubmission, Placement, PlacementRequest, Transition,
)


class ControlActivities:
    def __init__(self, session_factory: Callable[[], Session], heartbeat_timeout_s: float) -> None:
        self._session = session_factory
        self._timeout = heartbeat_timeout_s

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
            return EvaluatedJob(config=configs.to_spec(config), gpu_count=sub.gpu_count or config.gpu_count)

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
