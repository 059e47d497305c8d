"""TrainingJobWorkflow: one durable workflow per training job (workflow id = job id).

evaluate -> queued -> (placement: wait for a matching agent pool) -> dispatch ``run_training`` to
the pool's task queue -> running (the agent's claim arrives as a signal) -> completed / failed /
cancelled. Agent loss (heartbeat timeout) retries on another agent, up to ``max_attempts``; the
training process's own non-zero exit fails the job without retry. Every transition is written by
the ``record_transition`` activity and mirrored into search attributes and current details.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError, TimeoutType

from workflows.approval_gate import ApprovalEnded, ApprovalGate

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        ADMISSION_GRANTED_SIGNAL, AGENT_STARTED_SIGNAL, AGENTS_CHANGED_SIGNAL, APPROVAL_DECISION_UPDATE, SA_COST_ESTIMATE, SA_ORG_SLUG, SA_QUEUE_PRIORITY,
        SA_TEAM_SLUG, AdmissionRequest, AdmissionTicket, ApprovalDecision, ApprovalOutcome, JobScope,
        task_queue_priority,
        ERR_AGENT_UNAVAILABLE, ERR_TRAINING_FAILED, RUN_TRAINING_ACTIVITY, SA_AGENT_NAME, SA_CONFIG_NAME,
        SA_JOB_ATTEMPT, SA_JOB_OWNER, SA_JOB_STATUS, SA_JOB_TARGET, TRAINING_WORKFLOW, AgentStarted,
        EvaluatedJob, JobResult, JobSubmission, Placement, PlacementRequest, TrainingAssignment,
        TrainingOutcome, Transition,
    )

# Control activities are short, idempotent database calls: run as local activities in the worker
# host (no task-queue round trip); Temporal still retries them and records their results.
CONTROL_ACTIVITY_TIMEOUT = timedelta(seconds=30)
CONTROL_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10))
DISPATCH_SCHEDULE_TO_START = timedelta(minutes=10)  # then placement is re-resolved
TRAINING_MAX_DURATION = timedelta(days=30)
MAX_HANDBACKS = 25
ADMISSION_PATCH = "admission-v1"  # jobs started before admission existed replay without it


class JobEnded(Exception):
    """Internal: the job reached a terminal state inside the attempt loop."""

    def __init__(self, status: str, error: str | None) -> None:
        super().__init__(error or status)
        self.status, self.error = status, error


@workflow.defn(name=TRAINING_WORKFLOW)
class TrainingJobWorkflow:
    @workflow.init
    def __init__(self, sub: JobSubmission) -> None:
        self.sub = sub
        self.status = "pending"
        self.attempt = 0
        self.failures = 0
        self.agent: AgentStarted | None = None
        self.agents_changed = False
        self.queue_reason: str | None = None
        self.error: str | None = None
        self.seq = 0
        self.approval = ApprovalGate(sub)
        self.scope: JobScope | None = None  # set when the job joins the admission queue
        self.admitted = False

    # ---- messages ---------------------------------------------------------------------------

    @workflow.signal(name=AGENT_STARTED_SIGNAL)
    def agent_started(self, started: AgentStarted) -> None:
        if started.attempt == self.attempt and self.status not in ("completed", "failed", "cancelled"):
            self.agent = started

    @workflow.signal(name=ADMISSION_GRANTED_SIGNAL)
    def admission_granted(self) -> None:
        self.admitted = True

    @workflow.signal(name=AGENTS_CHANGED_SIGNAL)
    def agents_changed_signal(self) -> None:
        self.agents_changed = True

    @workflow.update(name=APPROVAL_DECISION_UPDATE)
    async def decide_approval(self, decision: ApprovalDecision) -> ApprovalOutcome:
        return await self.approval.decide(decision)

    @decide_approval.validator
    def validate_approval(self, decision: ApprovalDecision) -> None:
        self.approval.validate(decision)

    @workflow.query
    def state(self) -> dict:
        return {"status": self.status, "attempt": self.attempt, "queue_reason": self.queue_reason,
                "agent_name": self.agent.agent_name if self.agent else None, "error": self.error,
                "approval_state": self.approval.state, "admitted": self.admitted}

    # ---- main -------------------------------------------------------------------------------

    @workflow.run
    async def run(self, sub: JobSubmission) -> JobResult:
        outcome: TrainingOutcome | None = None
        try:
            evaluated = await self._evaluate()
            if evaluated.approval is not None:
                await self._await_approval(evaluated)
            if workflow.patched(ADMISSION_PATCH):
                await self._admit(evaluated)
            outcome = await self._dispatch_until_done(evaluated)
            await self._release()
            await self._transition("completed", outputs=outcome.outputs)
        except JobEnded as ended:
            await self._release()
            await self._transition(ended.status, error=ended.error)
        except asyncio.CancelledError:
            await self.approval.cancel_if_pending()
            await self._release()
            await self._transition("cancelled", error="cancelled by request")
            await self.approval.drain_notices()
            raise
        await self.approval.drain_notices()
        return JobResult(job_id=sub.job_id, status=self.status, attempt=self.attempt,
                         agent_name=self.agent.agent_name if self.agent else None, error=self.error,
                         outputs=outcome.outputs if outcome else [])

    async def _evaluate(self) -> EvaluatedJob:
        try:
            return await workflow.execute_local_activity(
                "evaluate_submission", self.sub, result_type=EvaluatedJob,
                start_to_close_timeout=CONTROL_ACTIVITY_TIMEOUT, retry_policy=CONTROL_RETRY)
        except (ActivityError, ApplicationError) as err:  # a local activity's failure arrives unwrapped
            raise JobEnded("failed", _message(err)) from err

    async def _await_approval(self, evaluated: EvaluatedJob) -> None:
        assert evaluated.approval is not None

        async def enter_pending(reason: str) -> None:
            await self._transition("pending_approval", queue_reason=reason)
        try:
            await self.approval.run(evaluated.approval, enter_pending)
        except ApprovalEnded as ended:
            raise JobEnded("cancelled", str(ended)) from None

    async def _admit(self, evaluated: EvaluatedJob) -> None:
        """Join the admission queue; wait (no timer: admission is event-driven) until granted a slot."""
        self.scope = evaluated.scope or JobScope(user_id=self.sub.owner_id, username=self.sub.owner_name)
        attributes = [SA_QUEUE_PRIORITY.value_set(self.scope.priority),
                      SA_TEAM_SLUG.value_set(self.scope.team_slug or ""), SA_ORG_SLUG.value_set(self.scope.org_slug or "")]
        if evaluated.cost_estimate_usd is not None:
            attributes.append(SA_COST_ESTIMATE.value_set(evaluated.cost_estimate_usd))
        workflow.upsert_search_attributes(attributes)
        ticket = await workflow.execute_local_activity(
            "request_admission", AdmissionRequest(job_id=self.sub.job_id, scope=self.scope),
            result_type=AdmissionTicket, start_to_close_timeout=CONTROL_ACTIVITY_TIMEOUT, retry_policy=CONTROL_RETRY)
        if ticket.admitted or self.admitted:
            self.admitted = True
            return
        await self._transition("queued", queue_reason=f"waiting for a slot: {ticket.reason}")
        await workflow.wait_condition(lambda: self.admitted)

    async def _release(self) -> None:
        """Give the slot (or the place in line) back, so the next job is admitted at once."""
        if self.scope is None:
            return
        await workflow.execute_local_activity("release_admission", self.sub.job_id,
                                              start_to_close_timeout=CONTROL_ACTIVITY_TIMEOUT,
                                              retry_policy=CONTROL_RETRY)
        self.scope = None

    async def _dispatch_until_done(self, evaluated: EvaluatedJob) -> TrainingOutcome:
        """Each dispatch an agent claimed gets a new attempt number (its logs stay apart); only
        lost agents count against ``max_attempts``, a hand-back (drain, shutdown) does not."""
        excluded: dict[str, datetime] = {}
        handbacks = 0
        last_error = "no attempt ran"
        while self.failures < self.sub.max_attempts:
            placement = await self._wait_for_placement(evaluated.gpu_count, excluded)
            self.attempt += 1
            self.agent = None
            await self._transition("queued", queue_reason=f"waiting for an agent of pool {placement.task_queue}")
            try:
                return await self._run_attempt(evaluated, placement)
            except ActivityError as err:
                cause = err.cause
                if isinstance(cause, ApplicationError) and cause.type == ERR_TRAINING_FAILED:
                    raise JobEnded("failed", cause.message) from err
                if isinstance(cause, TimeoutError) and cause.type == TimeoutType.SCHEDULE_TO_START:
                    self.attempt -= 1  # nobody picked it up: re-resolve placement, same attempt number
                    continue
                if self.agent:
                    excluded[self.agent.agent_id] = workflow.now()
                if isinstance(cause, ApplicationError) and cause.type == ERR_AGENT_UNAVAILABLE:
                    handbacks += 1
                    if handbacks <= MAX_HANDBACKS:
                        continue
                self.failures += 1
                last_error = _message(err)
                workflow.logger.warning("attempt %s of job %s lost: %s", self.attempt, self.sub.job_id, last_error)
        raise JobEnded("failed", f"gave up after {self.failures} lost attempts; last: {last_error}")

    async def _wait_for_placement(self, gpu_count: int, excluded: dict[str, datetime]) -> Placement:
        request = PlacementRequest(job_id=self.sub.job_id, target=self.sub.target,
                                   worker_labels=self.sub.worker_labels, gpu_count=gpu_count,
                                   excluded_agents=dict(excluded))
        while True:
            self.agents_changed = False
            try:
                placement = await workflow.execute_local_activity(
                    "resolve_placement", request, result_type=Placement,
                    start_to_close_timeout=CONTROL_ACTIVITY_TIMEOUT, retry_policy=CONTROL_RETRY)
            except (ActivityError, ApplicationError) as err:
                raise JobEnded("failed", _message(err)) from err
            if placement.task_queue:
                return placement
            if self.status != "queued" or placement.reason != self.queue_reason:
                await self._transition("queued", queue_reason=placement.reason)
            try:
                await workflow.wait_condition(lambda: self.agents_changed,
                                              timeout=timedelta(seconds=self.sub.placement_recheck_seconds),
                                              timeout_summary="placement-recheck")
            except asyncio.TimeoutError:
                pass

    async def _run_attempt(self, evaluated: EvaluatedJob, placement: Placement) -> TrainingOutcome:
        assignment = TrainingAssignment(job_id=self.sub.job_id, attempt=self.attempt,
                                        owner_name=self.sub.owner_name, config=evaluated.config)
        handle = workflow.start_activity(
            RUN_TRAINING_ACTIVITY, assignment, result_type=TrainingOutcome, task_queue=placement.task_queue,
            schedule_to_start_timeout=DISPATCH_SCHEDULE_TO_START, start_to_close_timeout=TRAINING_MAX_DURATION,
            heartbeat_timeout=timedelta(seconds=self.sub.heartbeat_timeout_seconds),
            retry_policy=RetryPolicy(maximum_attempts=1),
            priority=(Priority(priority_key=task_queue_priority(self.scope.priority), fairness_key=self.scope.username)
                      if self.scope is not None else Priority.default),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=f"train {self.sub.config_name} (attempt {self.attempt})")
        recorded_for: AgentStarted | None = None
        try:
            while not handle.done():
                await workflow.wait_condition(lambda: handle.done() or self.agent is not recorded_for)
                if self.agent is not None and self.agent is not recorded_for:
                    recorded_for = self.agent
                    await self._transition("running")
            return await handle
        except asyncio.CancelledError:
            handle.cancel()
            try:
                await handle
            except (ActivityError, asyncio.CancelledError):
                pass
            raise

    # ---- transitions --------------------------------------------------------------------------

    async def _transition(self, status: str, queue_reason: str | None = None, error: str | None = None,
                          outputs: list | None = None) -> None:
        self.status, self.queue_reason = status, queue_reason
        if error:
            self.error = error
        self.seq += 1
        agent = self.agent
        await workflow.execute_local_activity(
            "record_transition",
            Transition(job_id=self.sub.job_id, seq=self.seq, status=status, attempt=self.attempt,
                       agent_id=agent.agent_id if agent else None, agent_name=agent.agent_name if agent else None,
                       queue_reason=queue_reason, error=error, outputs=outputs),
            start_to_close_timeout=CONTROL_ACTIVITY_TIMEOUT, retry_policy=CONTROL_RETRY)
        workflow.upsert_search_attributes([
            SA_JOB_STATUS.value_set(status), SA_JOB_OWNER.value_set(self.sub.owner_name),
            SA_CONFIG_NAME.value_set(self.sub.config_name), SA_JOB_TARGET.value_set(self.sub.target),
            SA_AGENT_NAME.value_set(agent.agent_name if agent else ""), SA_JOB_ATTEMPT.value_set(self.attempt),
        ])
        workflow.set_current_details(self._details())

    def _details(self) -> str:
        lines = [f"**Job** `{self.sub.job_id}` — **{self.status}**",
                 f"config `{self.sub.config_name}`, owner `{self.sub.owner_name}`, target `{self.sub.target}`",
                 f"attempt {self.attempt} ({self.failures} of {self.sub.max_attempts} allowed agent losses used)"]
        if self.sub.worker_labels:
            lines.append(f"selector {self.sub.worker_labels}")
        if self.agent:
            lines.append(f"agent `{self.agent.agent_name}`")
        if self.approval.details():
            lines.append(self.approval.details() or "")
        if self.queue_reason:
            lines.append(f"waiting: {self.queue_reason}")
        if self.error:
            lines.append(f"error: {self.error}")
        return "\n\n".join(lines)


def _message(err: ActivityError | ApplicationError) -> str:
    if isinstance(err, ApplicationError):
        return err.message
    cause = err.cause
    while cause is not None and cause.cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.cause
    if isinstance(cause, TimeoutError):
        return f"agent lost ({cause.type.name.lower() if cause.type else 'timeout'} timeout)"
    return cause.message if cause is not None else str(err)
