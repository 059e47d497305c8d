"""GpuDispatchWorkflow: one dispatch of a job in the GPU namespace, started by the Nexus handler.

Schedules ``run_training`` (a ``TrainingTask``: job id and attempt number only) on the pool's task
queue with the job's priority and fairness keys, and owns the retry on a lost agent there: a
heartbeat timeout or an agent's crash runs the next attempt number on the same pool, a hand-back
(drain, shutdown, refused claim) too without counting as lost. It returns a report when the process
exited (0 or not), the agents were lost ``max_lost`` times, no agent started a try in time, or the
control plane closed the dispatch. Cancellation of the Nexus operation cancels the running attempt,
whose agent kills the training's process group.

This workflow runs where agents can reach, so it holds nothing secret and decides nothing: the job
workflow settles each dispatch from the database.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, TimeoutError, TimeoutType

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        DISPATCH_WORKFLOW, ERR_AGENT_UNAVAILABLE, ERR_DISPATCH_CLOSED, ERR_TRAINING_FAILED, RUN_TRAINING_ACTIVITY,
        DispatchRequest, DispatchResult, TrainingTask,
    )

TRAINING_MAX_DURATION = timedelta(days=30)
CANCEL_BETWEEN_TRIES_PATCH = "dispatch-cancel-between-tries-v1"


@workflow.defn(name=DISPATCH_WORKFLOW)
class GpuDispatchWorkflow:
    def __init__(self) -> None:
        self.attempt = 0
        self.lost = 0

    @workflow.query
    def progress(self) -> dict:
        return {"attempt": self.attempt, "lost": self.lost}

    @workflow.run
    async def run(self, req: DispatchRequest) -> DispatchResult:
        self.attempt, self.lost = req.first_attempt, req.lost_before
        last_error: str | None = None
        priority = Priority(priority_key=req.priority_key, fairness_key=req.fairness_key)
        while self.attempt <= req.last_attempt:
            workflow.set_current_details(f"job `{req.job_id}` attempt {self.attempt} on `{req.task_queue}` "
                                         f"({self.lost} of {req.max_lost} lost agents)")
            try:
                await workflow.execute_activity(
                    RUN_TRAINING_ACTIVITY, TrainingTask(job_id=req.job_id, attempt=self.attempt),
                    task_queue=req.task_queue, schedule_to_start_timeout=timedelta(seconds=req.start_timeout_seconds),
                    start_to_close_timeout=TRAINING_MAX_DURATION,
                    heartbeat_timeout=timedelta(seconds=req.heartbeat_timeout_seconds),
                    retry_policy=RetryPolicy(maximum_attempts=1), priority=priority,
                    cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                    summary=f"{req.summary} (attempt {self.attempt})"[:200])
                return DispatchResult(outcome="finished", attempt=self.attempt, lost=self.lost)
            except ActivityError as err:
                cause = err.cause
                if isinstance(cause, CancelledError):  # this dispatch was cancelled: the attempt was, too
                    raise
                if isinstance(cause, ApplicationError) and cause.type == ERR_TRAINING_FAILED:
                    return DispatchResult(outcome="failed", attempt=self.attempt, lost=self.lost, error=cause.message)
                if isinstance(cause, ApplicationError) and cause.type == ERR_DISPATCH_CLOSED:
                    return DispatchResult(outcome="closed", attempt=self.attempt, lost=self.lost, error=cause.message)
                if isinstance(cause, TimeoutError) and cause.type == TimeoutType.SCHEDULE_TO_START:
                    return DispatchResult(outcome="not_started", attempt=self.attempt, lost=self.lost,
                                          error=f"no agent of pool {req.task_queue} started attempt {self.attempt} "
                                                f"within {req.start_timeout_seconds:g} s")
                if workflow.cancellation_reason() is not None and workflow.patched(CANCEL_BETWEEN_TRIES_PATCH):
                    # cancelled while this try was ending (the SDK spent the cancel on it): no next try
                    raise asyncio.CancelledError() from err
                last_error = _message(err)
                if not (isinstance(cause, ApplicationError) and cause.type == ERR_AGENT_UNAVAILABLE):
                    self.lost += 1
                    workflow.logger.warning("job %s attempt %s lost: %s", req.job_id, self.attempt, last_error)
                    if self.lost >= req.max_lost:
                        return DispatchResult(outcome="lost", attempt=self.attempt, lost=self.lost, error=last_error)
                self.attempt += 1
                if self.attempt <= req.last_attempt and self._should_continue(req):
                    # a fresh history for the next try; the Nexus operation follows the new run
                    workflow.continue_as_new(req.model_copy(update={"first_attempt": self.attempt, "lost_before": self.lost}))
        return DispatchResult(outcome="lost", attempt=req.last_attempt, lost=self.lost,
                              error=last_error or "no attempt number left")


    @staticmethod
    def _should_continue(req: DispatchRequest) -> bool:
        info = workflow.info()
        limit = req.max_history_events
        return info.is_continue_as_new_suggested() or (limit is not None and info.get_current_history_length() >= limit)


def _message(err: ActivityError) -> str:
    cause = err.cause
    while cause is not None and cause.cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.cause
    if isinstance(cause, TimeoutError):
        return f"agent lost ({cause.type.name.lower() if cause.type else 'timeout'} timeout)"
    return cause.message if cause is not None else str(err)
