"""The job workflow's path before the GPU plane and the database checks (``workflow.patched`` is false).

Kept only so that histories recorded by earlier versions replay, and so that a workflow started before
the upgrade finishes the way it began. Here the workflow trusted what it was told: the approver's
authority in the update, ``admission_granted`` and ``agent_started`` as sent, and it scheduled
``run_training`` with the config on the pool queue itself. New workflows never take this path; the
agents of this version fetch what to run from the API, which refuses attempts it never dispatched,
so such an old job still waiting for an agent fails cleanly instead of running unchecked.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError, TimeoutType

from workflows.control_calls import CONTROL_ACTIVITY_TIMEOUT, CONTROL_RETRY

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        ERR_AGENT_UNAVAILABLE, ERR_TRAINING_FAILED, RUN_TRAINING_ACTIVITY, SA_COST_ESTIMATE, SA_ORG_SLUG,
        SA_QUEUE_PRIORITY, SA_TEAM_SLUG, AdmissionRequest, AdmissionTicket, AgentStarted, EvaluatedJob, JobScope,
        Placement, PlacementRequest, TrainingAssignment, TrainingOutcome, approver_eligible, task_queue_priority,
    )

DISPATCH_SCHEDULE_TO_START = timedelta(minutes=10)
TRAINING_MAX_DURATION = timedelta(days=30)
MAX_HANDBACKS = 25
ADMISSION_PATCH = "admission-v1"  # jobs started before admission existed replay without it


def legacy_approver_refusal(decision, owner_id: str, required_level: str) -> str | None:
    """The old validator's check, from the authority the update itself carried."""
    extra = decision.model_extra or {}
    if decision.decision == "cancel":
        if decision.actor_id != owner_id and not extra.get("may_cancel_any"):
            return "only the submitter or someone who may cancel any job can cancel this request"
        return None
    if decision.actor_id == owner_id:
        return "nobody approves or rejects their own job"
    if not approver_eligible(required_level, int(extra.get("level_priority") or 0), bool(extra.get("may_approve")),
                             bool(extra.get("approve_granted"))):
        return (f"{decision.actor_name} may not decide this request: it needs admin.approve and the level "
                f"{required_level!r} or higher")
    return None


class LegacyJobPath:
    """Mixed into TrainingJobWorkflow; uses its state and helpers (``sub``, ``_transition``, ...)."""

    async def _run_legacy_body(self, evaluated: EvaluatedJob):
        if evaluated.approval is not None:
            await self._await_approval(evaluated)
        if workflow.patched(ADMISSION_PATCH):
            await self._admit_legacy(evaluated)
        return await self._dispatch_until_done_legacy(evaluated)

    async def _admit_legacy(self, evaluated: EvaluatedJob) -> None:
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

    async def _dispatch_until_done_legacy(self, evaluated: EvaluatedJob) -> TrainingOutcome:
        from workflows.training_job import JobEnded, _message

        excluded: dict[str, datetime] = {}
        handbacks = 0
        last_error = "no attempt ran"
        while self.failures < self.sub.max_attempts:
            placement = await self._wait_for_placement_legacy(evaluated.gpu_count, excluded)
            self.attempt += 1
            self.agent = None
            await self._transition("queued", queue_reason=f"waiting for an agent of pool {placement.task_queue}")
            try:
                return await self._run_attempt_legacy(evaluated, placement)
            except ActivityError as err:
                cause = err.cause
                if isinstance(cause, ApplicationError) and cause.type == ERR_TRAINING_FAILED:
                    raise JobEnded("failed", cause.message) from err
                if isinstance(cause, TimeoutError) and cause.type == TimeoutType.SCHEDULE_TO_START:
                    self.attempt -= 1
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

    async def _wait_for_placement_legacy(self, gpu_count: int, excluded: dict[str, datetime]) -> Placement:
        from workflows.training_job import JobEnded, _message

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

    async def _run_attempt_legacy(self, evaluated: EvaluatedJob, placement: Placement) -> TrainingOutcome:
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
