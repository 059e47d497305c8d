"""TrainingJobWorkflow: one durable workflow per training job (workflow id = job id), control namespace.

evaluate (every policy, from the database) -> approval wait if a rule fired -> admission (a slot,
confirmed in the database) -> placement (a pool) -> dispatch into the GPU namespace through the Nexus
endpoint, where a dispatch workflow runs ``run_training`` on the pool's queue and retries on lost
agents -> running (each agent's claim, confirmed in the database) -> the dispatch is settled from the
database: completed / failed / lost (placed and dispatched again, up to ``max_attempts`` lost agents).

Temporal carries no authority here: signals and updates are hints that an activity confirms against
the database before anything changes, and the GPU plane's report of a dispatch is not its outcome.
Every transition is written by ``record_transition`` and mirrored into search attributes and the
current details. Workflows started before this version replay ``training_job_legacy``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityCancellationType
from temporalio.exceptions import ActivityError, ApplicationError, NexusOperationError, TimeoutError

from workflows.approval_gate import ApprovalEnded, ApprovalGate, ApprovalSuspended
from workflows.control_calls import CANCEL_CLEANUP_PATCH, control_activity, is_workflow_cancel
from workflows.training_job_legacy import LegacyJobPath

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        ADMISSION_GRANTED_SIGNAL, AGENT_STARTED_SIGNAL, AGENTS_CHANGED_SIGNAL, APPROVAL_DECISION_UPDATE,
        SA_AGENT_NAME, SA_CONFIG_NAME, SA_COST_ESTIMATE, SA_JOB_ATTEMPT, SA_JOB_OWNER, SA_JOB_STATUS, SA_JOB_TARGET,
        SA_ORG_SLUG, SA_QUEUE_PRIORITY, SA_TEAM_SLUG, TRAINING_WORKFLOW, AdmissionRequest, AdmissionTicket,
        AgentStarted, ApprovalDecision, ApprovalOutcome, ClaimCheck, ConfirmedClaim, DispatchOpening,
        DispatchRequest, DispatchResult, DispatchTicket, EvaluatedJob, GpuDispatchService, JobResult, JobResume,
        JobScope, RunContinuation,
        JobSubmission, Placement, PlacementRequest, RunLimits, SettledDispatch, SettleRequest, Transition,
        task_queue_priority, AGENT_TARGETS, PROVIDER_CHANGED_SIGNAL, ProviderStart, ProviderSync, ProviderSyncRequest,
    )

DISPATCH_MAX_DURATION = timedelta(days=60)
MAX_HANDBACKS = 25  # attempt numbers a dispatch may spend on agents that hand the task back
MAX_CLAIM_HINTS = 16
GPU_PLANE_PATCH = "gpu-plane-v1"  # earlier histories replay training_job_legacy
DEFAULT_NEXUS_ENDPOINT = "simpletuner-gpu-dispatch"
PROVIDER_CALL_TIMEOUT = timedelta(minutes=2)
PROVIDER_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
PROVIDER_CANCEL_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10),
                                    maximum_attempts=6)


class JobEnded(Exception):
    """Internal: the job reached a terminal state."""

    def __init__(self, status: str, error: str | None) -> None:
        super().__init__(error or status)
        self.status, self.error = status, error


@workflow.defn(name=TRAINING_WORKFLOW)
class TrainingJobWorkflow(LegacyJobPath):
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
        self.checked = False  # this run confirms every signal in the database (see run)
        self.finish_controls = False  # a cancel lets a running control activity finish (see run)
        self.admission_hint = False
        self.claim_hints: list[AgentStarted] = []
        self.limits = RunLimits(max_attempts=sub.max_attempts, heartbeat_timeout_seconds=sub.heartbeat_timeout_seconds,
                                placement_recheck_seconds=sub.placement_recheck_seconds)
        self.dispatch: DispatchTicket | None = None
        self.nexus_endpoint = DEFAULT_NEXUS_ENDPOINT
        self.evaluated: EvaluatedJob | None = None
        self.runs = 1  # this job's workflow runs so far (continue-as-new)
        self.provider_hint = False  # a webhook recorded something about the job's provider training
        self.provider_training: str | None = None
        self.provider_started = False
        if sub.resume is not None:
            self._restore(sub.resume)

    def _restore(self, r: JobResume) -> None:
        """The previous run's state, before any signal or update of this run is handled."""
        self.checked = True
        self.evaluated, self.runs = r.evaluated, r.runs + 1
        self.status, self.queue_reason, self.error = r.status, r.queue_reason, r.error
        self.attempt, self.failures, self.seq, self.agent, self.scope = r.attempt, r.failures, r.seq, r.agent, r.scope
        self.admission_hint, self.agents_changed, self.claim_hints = r.admission_hint, r.agents_changed, r.claim_hints
        self.admitted = r.phase in ("placement", "provider")
        if r.evaluated.limits is not None:
            self.limits = r.evaluated.limits
        self.nexus_endpoint = r.evaluated.nexus_endpoint or DEFAULT_NEXUS_ENDPOINT
        if r.phase == "approval" and r.approval is not None and r.evaluated.approval is not None:
            self.approval.restore(r.evaluated.approval, r.approval)

    # ---- messages: hints, confirmed by the run before they change anything ------------------------

    @workflow.signal(name=AGENT_STARTED_SIGNAL)
    def agent_started(self, started: AgentStarted) -> None:
        if self.checked:
            self.claim_hints = [*self.claim_hints, started][-MAX_CLAIM_HINTS:]
        elif started.attempt == self.attempt and self.status not in ("completed", "failed", "cancelled"):
            self.agent = started

    @workflow.signal(name=ADMISSION_GRANTED_SIGNAL)
    def admission_granted(self) -> None:
        if self.checked:
            self.admission_hint = True
        else:
            self.admitted = True

    @workflow.signal(name=PROVIDER_CHANGED_SIGNAL)
    def provider_changed(self) -> None:
        self.provider_hint = True

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
                "approval_state": self.approval.state, "admitted": self.admitted,
                "provider_training": self.provider_training}

    # ---- main -------------------------------------------------------------------------------

    @workflow.run
    async def run(self, sub: JobSubmission) -> JobResult:
        self.checked = workflow.patched(GPU_PLANE_PATCH)
        self.approval.checked = self.checked
        # a cancel while a control activity runs lets it finish, then cleans up (see cancel_safe)
        self.finish_controls = self.checked and workflow.patched(CANCEL_CLEANUP_PATCH)
        self.approval.finish_controls = self.finish_controls
        workflow.logger.info("job %s: run %s started%s", sub.job_id, workflow.info().run_id,
                             " (continued)" if sub.resume is not None else "")
        outputs = []
        try:
            completed_outputs = None
            if sub.resume is not None:
                await self._continue_run(sub.resume)
            elif self.checked:
                await self._run_checked(await self._evaluate())
            else:
                outcome = await self._run_legacy_body(await self._evaluate())
                outputs = completed_outputs = outcome.outputs
            await self._release()
            await self._transition("completed", outputs=completed_outputs)
        except JobEnded as ended:
            await self._release()
            await self._transition(ended.status, error=ended.error)
        except BaseException as err:
            if not (isinstance(err, asyncio.CancelledError) or (self.finish_controls and is_workflow_cancel(err))):
                raise
            await self.approval.cancel_if_pending()
            await self._release()
            await self._close_dispatch()
            await self._cancel_provider()
            await self._transition("cancelled", error="cancelled by request")
            await self.approval.drain_notices()
            raise asyncio.CancelledError() from (None if isinstance(err, asyncio.CancelledError) else err)
        await self.approval.drain_notices()
        return JobResult(job_id=sub.job_id, status=self.status, attempt=self.attempt,
                         agent_name=self.agent.agent_name if self.agent else None, error=self.error, outputs=outputs)

    async def _run_checked(self, evaluated: EvaluatedJob) -> None:
        self.evaluated = evaluated
        if evaluated.limits is not None:
            self.limits = evaluated.limits
        self.nexus_endpoint = evaluated.nexus_endpoint or DEFAULT_NEXUS_ENDPOINT
        if evaluated.approval is not None:
            await self._await_approval(evaluated)
        await self._admit(evaluated)
        await self._run_somewhere(evaluated)

    async def _run_somewhere(self, evaluated: EvaluatedJob, excluded: dict[str, datetime] | None = None) -> None:
        """On GPU agents (through the GPU plane) or on the cloud provider the job targets."""
        if (evaluated.target or self.sub.target) in AGENT_TARGETS:
            await self._dispatch_until_done(excluded)
        else:
            await self._run_on_provider()

    async def _continue_run(self, r: JobResume) -> None:
        """Go on where the previous run stopped, once the database has moved the job to this run."""
        self._mirror()
        try:
            await self._control("continue_job_run", RunContinuation(job_id=self.sub.job_id,
                                                                    previous_run_id=r.previous_run_id))
        except (ActivityError, ApplicationError) as err:
            raise JobEnded("failed", _message(err)) from err
        self.approval.bound = True
        await self._confirm_claims()
        if r.phase == "approval":
            await self._await_approval(r.evaluated, resumed=True)
        if r.phase in ("approval", "admission"):
            await self._admit(r.evaluated)
        await self._run_somewhere(r.evaluated, dict(r.excluded_agents))

    def _should_continue(self) -> bool:
        """Time for a fresh history: Temporal suggests it, or past the configured event count."""
        if not self.checked:
            return False
        info = workflow.info()
        limit = self.limits.max_history_events
        return info.is_continue_as_new_suggested() or (limit is not None and info.get_current_history_length() >= limit)

    async def _continue_as_new(self, phase: str, excluded: dict[str, datetime] | None = None) -> None:
        """Carry the state into a new run of this workflow (same id, search attributes, view)."""
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self.approval.drain_notices()
        assert self.evaluated is not None
        resume = JobResume(phase=phase, evaluated=self.evaluated, status=self.status, queue_reason=self.queue_reason,
                           error=self.error, attempt=self.attempt, failures=self.failures, seq=self.seq,
                           agent=self.agent, scope=self.scope, excluded_agents=excluded or {},
                           approval=self.approval.opened if phase == "approval" else None,
                           admission_hint=self.admission_hint, agents_changed=self.agents_changed,
                           claim_hints=self.claim_hints, previous_run_id=workflow.info().run_id, runs=self.runs)
        workflow.logger.info("job %s continues as new (run %s, %s events, waiting in %s)", self.sub.job_id,
                             self.runs + 1, workflow.info().get_current_history_length(), phase)
        workflow.continue_as_new(self.sub.model_copy(update={"resume": resume}),
                                 search_attributes=workflow.info().typed_search_attributes)

    async def _evaluate(self) -> EvaluatedJob:
        try:
            return await self._control("evaluate_submission", self.sub, EvaluatedJob)
        except (ActivityError, ApplicationError) as err:  # a local activity's failure arrives unwrapped
            raise JobEnded("failed", _message(err)) from err

    async def _control(self, name: str, arg, result_type=None):
        return await control_activity(name, arg, result_type, finish_on_cancel=self.finish_controls)

    async def _await_approval(self, evaluated: EvaluatedJob, resumed: bool = False) -> None:
        assert evaluated.approval is not None

        async def enter_pending(reason: str) -> None:
            await self._transition("pending_approval", queue_reason=reason)
        try:
            await self.approval.run(evaluated.approval, enter_pending, self._should_continue, resumed=resumed)
        except ApprovalEnded as ended:
            raise JobEnded("cancelled", str(ended)) from None
        except ApprovalSuspended:
            await self._continue_as_new("approval")

    async def _admit(self, evaluated: EvaluatedJob) -> None:
        """Join the admission queue; wait (no timer: admission is event-driven) until a slot is
        granted, each ``admission_granted`` signal confirmed in the database first."""
        self.scope = evaluated.scope or JobScope(user_id=self.sub.owner_id, username=self.sub.owner_name)
        attributes = [SA_QUEUE_PRIORITY.value_set(self.scope.priority),
                      SA_TEAM_SLUG.value_set(self.scope.team_slug or ""), SA_ORG_SLUG.value_set(self.scope.org_slug or "")]
        if evaluated.cost_estimate_usd is not None:
            attributes.append(SA_COST_ESTIMATE.value_set(evaluated.cost_estimate_usd))
        workflow.upsert_search_attributes(attributes)
        try:
            ticket = await self._control("request_admission", AdmissionRequest(job_id=self.sub.job_id, scope=self.scope),
                                         AdmissionTicket)
        except (ActivityError, ApplicationError) as err:
            raise JobEnded("failed", _message(err)) from err
        if not ticket.admitted and (self.status, self.queue_reason) != ("queued", f"waiting for a slot: {ticket.reason}"):
            await self._transition("queued", queue_reason=f"waiting for a slot: {ticket.reason}")
            while not ticket.admitted:
                await workflow.wait_condition(lambda: self.admission_hint or bool(self.claim_hints)
                                              or self._should_continue())
                await self._confirm_claims()  # nothing is dispatched yet: each is checked, refused, audited
                if self.admission_hint:
                    self.admission_hint = False
                    ticket = await self._control("confirm_admission", self.sub.job_id, AdmissionTicket)
                if not ticket.admitted and self._should_continue():
                    await self._continue_as_new("admission")
        self.admitted = True

    async def _release(self) -> None:
        """Give the slot (or the place in line) back, so the next job is admitted at once."""
        if self.scope is None:
            return
        await self._control("release_admission", self.sub.job_id)
        self.scope = None

    # ---- dispatch through the GPU plane --------------------------------------------------------

    async def _dispatch_until_done(self, excluded: dict[str, datetime] | None = None) -> None:
        """Place, dispatch, settle; again after lost agents or an attempt no agent started, until
        ``max_attempts`` agents were lost."""
        excluded = excluded if excluded is not None else {}
        last_error = "no attempt ran"
        while self.failures < self.limits.max_attempts:
            placement = await self._wait_for_placement(excluded)
            remaining = self.limits.max_attempts - self.failures
            self.agent = None
            queued = self._next_transition("queued", queue_reason=f"waiting for an agent of pool {placement.task_queue}")
            self.dispatch = await self._control("open_dispatch", DispatchOpening(  # records the transition too
                job_id=self.sub.job_id, task_queue=placement.task_queue, first_attempt=self.attempt + 1,
                attempts=remaining + MAX_HANDBACKS, transition=queued), DispatchTicket)
            self._mirror()
            report = await self._run_dispatch(placement, remaining)
            settled = await self._settle(report)
            if settled.outcome == "completed":
                return
            if settled.outcome == "failed":
                raise JobEnded("failed", settled.error)
            excluded.update(settled.lost_agents)
            if settled.outcome == "lost":
                self.failures += max(1, settled.lost_attempts)
                last_error = settled.error or last_error
                workflow.logger.warning("job %s lost %s attempt(s): %s", self.sub.job_id, settled.lost_attempts,
                                        last_error)
        raise JobEnded("failed", f"gave up after {self.failures} lost attempts; last: {last_error}")

    async def _wait_for_placement(self, excluded: dict[str, datetime]) -> Placement:
        while True:
            self.agents_changed = False
            try:
                placement = await self._control("resolve_placement", PlacementRequest(
                    job_id=self.sub.job_id, excluded_agents=dict(excluded)), Placement)
            except (ActivityError, ApplicationError) as err:
                raise JobEnded("failed", _message(err)) from err
            if placement.task_queue:
                return placement
            if self.status != "queued" or placement.reason != self.queue_reason:
                await self._transition("queued", queue_reason=placement.reason)
            try:
                await workflow.wait_condition(lambda: self.agents_changed or bool(self.claim_hints),
                                              timeout=timedelta(seconds=self.limits.placement_recheck_seconds),
                                              timeout_summary="placement-recheck")
            except asyncio.TimeoutError:
                pass
            await self._confirm_claims()
            if self._should_continue():
                await self._continue_as_new("placement", excluded)

    async def _run_dispatch(self, placement: Placement, remaining: int) -> DispatchResult:
        """Start the dispatch through the Nexus endpoint; record each confirmed claim as running."""
        assert self.dispatch is not None
        request = DispatchRequest(
            job_id=self.sub.job_id, dispatch=self.dispatch.dispatch, task_queue=placement.task_queue or "",
            first_attempt=self.dispatch.first_attempt, last_attempt=self.dispatch.last_attempt, max_lost=remaining,
            heartbeat_timeout_seconds=self.limits.heartbeat_timeout_seconds,
            start_timeout_seconds=self.limits.dispatch_start_timeout_seconds,
            priority_key=task_queue_priority(self.scope.priority) if self.scope else None,
            fairness_key=self.scope.username if self.scope else None,
            summary=f"{self.sub.config_name} by {self.sub.owner_name}", max_history_events=self.limits.max_history_events)
        nexus = workflow.create_nexus_client(service=GpuDispatchService, endpoint=self.nexus_endpoint)
        handle = await nexus.start_operation(GpuDispatchService.dispatch, request, output_type=DispatchResult,
                                             schedule_to_close_timeout=DISPATCH_MAX_DURATION,
                                             summary=f"dispatch {self.dispatch.dispatch} to {placement.task_queue}")
        operation = asyncio.create_task(_outcome_of(handle))
        try:
            while not operation.done() or self.claim_hints:
                await workflow.wait_condition(lambda: operation.done() or bool(self.claim_hints))
                await self._confirm_claims()
            return operation.result()
        except asyncio.CancelledError:
            handle.cancel()
            try:
                await operation
            except (NexusOperationError, asyncio.CancelledError):
                pass
            raise

    async def _confirm_claims(self) -> None:
        while self.claim_hints:
            await self._confirm_claim(self.claim_hints.pop(0))

    async def _confirm_claim(self, hint: AgentStarted) -> None:
        confirmed = await self._control("confirm_claim", ClaimCheck(job_id=self.sub.job_id, attempt=hint.attempt,
                                                                    agent_id=hint.agent_id), ConfirmedClaim)
        if not confirmed.confirmed or confirmed.attempt < self.attempt or (
                confirmed.attempt == self.attempt and self.agent is not None):
            return
        self.attempt = confirmed.attempt
        self.agent = AgentStarted(agent_id=confirmed.agent_id or "", agent_name=confirmed.agent_name or "",
                                  attempt=confirmed.attempt)
        await self._transition("running")

    async def _settle(self, report: DispatchResult | None) -> SettledDispatch:
        assert self.dispatch is not None
        settled = await self._control("settle_dispatch", SettleRequest(
            job_id=self.sub.job_id, dispatch=self.dispatch.dispatch, reported=report), SettledDispatch)
        self.dispatch = None
        if settled.attempt > self.attempt:
            self.attempt = settled.attempt
        if settled.agent_id and (self.agent is None or self.agent.agent_id != settled.agent_id):
            self.agent = AgentStarted(agent_id=settled.agent_id, agent_name=settled.agent_name or "",
                                      attempt=settled.attempt)
        return settled

    async def _close_dispatch(self) -> None:
        """A cancelled job closes its open dispatch, so no agent can claim it any more."""
        if self.dispatch is not None:
            await self._settle(None)

    # ---- a cloud provider's training ----------------------------------------------------------------

    async def _run_on_provider(self) -> None:
        """Create the training (waiting on a timer while the provider is unavailable), then follow it:
        each webhook's hint reads what the API recorded, and a poll runs when none came for a while."""
        start = await self._start_training()
        self.provider_hint = False  # cleared before each read: a hint arriving during it wakes the next wait
        sync = await self._sync_training(poll=False)
        while True:
            await self._follow(sync)
            if sync.terminal:
                if sync.job_status == "completed":
                    return
                raise JobEnded(sync.job_status, sync.error or f"training {sync.provider_status} on {self.sub.target}")
            try:
                await workflow.wait_condition(lambda: self.provider_hint,
                                              timeout=timedelta(seconds=start.poll_seconds), timeout_summary="provider-poll")
                poll = False
            except asyncio.TimeoutError:
                poll = True
            self.provider_hint = False
            sync = await self._sync_training(poll)
            if self._should_continue():
                await self._continue_as_new("provider")

    async def _start_training(self) -> ProviderStart:
        while True:
            try:
                self.provider_started = True  # from here a cancel asks the provider too (see _cancel_provider)
                start = await workflow.execute_activity(  # a cancel waits for it: a training it creates is known
                    "start_provider_training", self.sub.job_id, result_type=ProviderStart,
                    start_to_close_timeout=PROVIDER_CALL_TIMEOUT, retry_policy=PROVIDER_RETRY,
                    cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                    summary=f"create the training on {self.sub.target}")
            except ActivityError as err:
                if is_workflow_cancel(err):
                    raise
                raise JobEnded("failed", _message(err)) from err
            if start.training_id:
                self.provider_training = start.training_id
                return start
            if start.retry_in_seconds is None:
                raise JobEnded("failed", start.error or start.reason or f"{self.sub.target} refused the training")
            reason = start.reason or f"waiting for {self.sub.target}"
            if (self.status, self.queue_reason) != ("queued", reason):
                await self._transition("queued", queue_reason=reason)
            await workflow.sleep(timedelta(seconds=start.retry_in_seconds), summary="provider-unavailable")
            if self._should_continue():
                await self._continue_as_new("provider")

    async def _sync_training(self, poll: bool) -> ProviderSync:
        try:
            return await workflow.execute_activity(
                "sync_provider_training", ProviderSyncRequest(job_id=self.sub.job_id, poll=poll),
                result_type=ProviderSync, start_to_close_timeout=PROVIDER_CALL_TIMEOUT, retry_policy=PROVIDER_RETRY)
        except ActivityError as err:
            if is_workflow_cancel(err):
                raise
            raise JobEnded("failed", _message(err)) from err

    async def _follow(self, sync: ProviderSync) -> None:
        if sync.job_status == "running" and self.status != "running":
            await self._transition("running")
        elif sync.job_status == "queued" and (self.status, self.queue_reason) != ("queued", sync.reason):
            await self._transition("queued", queue_reason=sync.reason)

    async def _cancel_provider(self) -> None:
        """A cancelled job's training is cancelled at the provider too (the activity reads which one from
        the database: a create cut short by the cancel may have recorded it without telling this run)."""
        if not self.provider_started:
            return
        try:
            await workflow.execute_activity("cancel_provider_training", self.sub.job_id, result_type=bool,
                                            start_to_close_timeout=PROVIDER_CALL_TIMEOUT,
                                            retry_policy=PROVIDER_CANCEL_RETRY)
        except ActivityError as err:
            workflow.logger.warning("job %s: the provider's training could not be cancelled: %s", self.sub.job_id,
                                    _message(err))

    # ---- transitions --------------------------------------------------------------------------

    async def _transition(self, status: str, queue_reason: str | None = None, error: str | None = None,
                          outputs: list | None = None) -> None:
        transition = self._next_transition(status, queue_reason, error, outputs)
        await self._control("record_transition", transition)
        self._mirror()

    def _next_transition(self, status: str, queue_reason: str | None = None, error: str | None = None,
                         outputs: list | None = None) -> Transition:
        self.status, self.queue_reason = status, queue_reason
        if error:
            self.error = error
        self.seq += 1
        agent = self.agent
        return Transition(job_id=self.sub.job_id, seq=self.seq, status=status, attempt=self.attempt,
                          agent_id=agent.agent_id if agent else None, agent_name=agent.agent_name if agent else None,
                          queue_reason=queue_reason, error=error, outputs=outputs)

    def _mirror(self) -> None:
        """The job's status in its search attributes and current details (the Web UI's view)."""
        agent = self.agent
        workflow.upsert_search_attributes([
            SA_JOB_STATUS.value_set(self.status), SA_JOB_OWNER.value_set(self.sub.owner_name),
            SA_CONFIG_NAME.value_set(self.sub.config_name), SA_JOB_TARGET.value_set(self.sub.target),
            SA_AGENT_NAME.value_set(agent.agent_name if agent else ""), SA_JOB_ATTEMPT.value_set(self.attempt),
        ])
        workflow.set_current_details(self._details())

    def _details(self) -> str:
        lines = [f"**Job** `{self.sub.job_id}` — **{self.status}**",
                 f"config `{self.sub.config_name}`, owner `{self.sub.owner_name}`, target `{self.sub.target}`",
                 f"attempt {self.attempt} ({self.failures} of {self.limits.max_attempts} allowed agent losses used)"
                 + (f", workflow run {self.runs}" if self.runs > 1 else "")]
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


async def _outcome_of(handle) -> DispatchResult:
    """The GPU plane's report; a failed or lost operation reads as a dispatch that lost its agent."""
    try:
        return await handle
    except NexusOperationError as err:
        return DispatchResult(outcome="lost", attempt=0, error=_message(err))


def _message(err: BaseException) -> str:
    if isinstance(err, ApplicationError):
        return err.message
    cause = err.cause if isinstance(err, (ActivityError, NexusOperationError)) else None
    while cause is not None and cause.cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.cause
    if isinstance(cause, TimeoutError):
        return f"agent lost ({cause.type.name.lower() if cause.type else 'timeout'} timeout)"
    return cause.message if cause is not None else str(err)
