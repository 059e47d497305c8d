"""The approval wait of a training job, run inside TrainingJobWorkflow.

open the request -> mail the approvers (a retried activity, not awaited) -> wait for a decision
with a durable timer. Decisions arrive as the ``decide_approval`` Workflow Update (REST, and the
mailbox watcher for e-mail replies). The update carries no authority: the validator only refuses a
request that is not waiting for a decision; the handler, one decision at a time, has the
``check_approval_decision`` activity confirm against the database that the decision was recorded by
an authenticated channel and that its actor may make it (level, ``admin.approve``, a personal
grant, never one's own job), and only then takes it. Runs recorded before that check replay the old
validator, which read the authority from the update (``training_job_legacy``).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Awaitable, Callable

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from workflows.control_calls import CONTROL_ACTIVITY_TIMEOUT, CONTROL_RETRY, control_activity

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        ERR_APPROVAL_FORBIDDEN, ERR_APPROVAL_NOT_PENDING, ERR_WORKFLOW_CONTINUING, SA_APPROVAL_STATE, ApprovalDecision, ApprovalNotice,
        ApprovalOpened, ApprovalOutcome, ApprovalRequirement, DecisionCheck, DecisionVerdict, JobSubmission,
        OpenApproval,
    )
    from workflows.training_job_legacy import legacy_approver_refusal

NOTICE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), backoff_coefficient=2.0,
                           maximum_interval=timedelta(minutes=5), maximum_attempts=10)
STATUS_FOR_DECISION = {"approve": "approved", "reject": "rejected", "cancel": "cancelled", "expire": "expired"}


class ApprovalEnded(Exception):
    """The request was rejected, cancelled or expired: the job ends cancelled with this reason."""


class ApprovalSuspended(Exception):
    """The wait goes on in the workflow's next run (continue-as-new); nothing was decided."""


class ApprovalGate:
    def __init__(self, sub: JobSubmission) -> None:
        self.sub = sub
        self.requirement: ApprovalRequirement | None = None
        self.opened: ApprovalOpened | None = None
        self.state = "none"  # none | pending | approved | rejected | expired | cancelled
        self.decision: ApprovalDecision | None = None
        self.outcome: ApprovalOutcome | None = None
        self.notices: list[workflow.ActivityHandle] = []
        self.checked = False  # decisions are checked in the database (set by the workflow's run)
        self.finish_controls = False  # a workflow cancel lets open/close finish first (set by the run)
        self.deciding = asyncio.Lock()
        self.handing_over = False  # this run is about to continue as new: decisions go to the next one
        self.bound = True  # a continued run checks decisions only once the database has moved the job to it

    def restore(self, requirement: ApprovalRequirement, opened: ApprovalOpened) -> None:
        """A pending request carried over from the previous run (before any update is validated)."""
        self.requirement, self.opened, self.state, self.checked = requirement, opened, "pending", True
        self.bound = False

    # ---- the update's validator and handler (called by the workflow) -----------------------------

    def validate(self, d: ApprovalDecision) -> None:
        if self.opened is None:
            raise ApplicationError("this job has no approval request", type=ERR_APPROVAL_NOT_PENDING)
        if self.handing_over and self.decision is None:
            raise ApplicationError("the job's workflow is continuing in a new run; send the decision again",
                                   type=ERR_WORKFLOW_CONTINUING)
        if self.state != "pending" or self.decision is not None:
            state = self.state if self.state != "pending" else "being decided"
            raise ApplicationError(f"approval request {self.opened.request_id} is already {state}",
                                   type=ERR_APPROVAL_NOT_PENDING)
        if not self.checked:
            required = self.requirement.required_level if self.requirement else "admin"
            why = legacy_approver_refusal(d, self.sub.owner_id, required)
            if why is not None:
                raise ApplicationError(why, type=ERR_APPROVAL_FORBIDDEN)

    async def decide(self, d: ApprovalDecision) -> ApprovalOutcome:
        if self.checked:
            await self._take_checked(d)
        else:
            self.validate(d)  # two updates accepted in one task: the second one fails here
            self.decision = d
        await workflow.wait_condition(lambda: self.outcome is not None)
        assert self.outcome is not None
        return self.outcome

    async def _take_checked(self, d: ApprovalDecision) -> None:
        """One decision at a time: confirm it in the database, then take it if still undecided."""
        async with self.deciding:
            self.validate(d)
            await workflow.wait_condition(lambda: self.bound)
            assert self.opened is not None
            verdict = await workflow.execute_local_activity(
                "check_approval_decision", DecisionCheck(request_id=self.opened.request_id, job_id=self.sub.job_id,
                                                         decision=d),
                result_type=DecisionVerdict, start_to_close_timeout=CONTROL_ACTIVITY_TIMEOUT, retry_policy=CONTROL_RETRY)
            if not verdict.allowed:
                raise ApplicationError(verdict.message or "decision refused",
                                       type=verdict.error_type or ERR_APPROVAL_FORBIDDEN)
            self.validate(d)  # it may have expired while the check ran
            self.decision = d.model_copy(update={"actor_name": verdict.actor_name or d.actor_name})

    # ---- the wait -----------------------------------------------------------------------------

    async def run(self, requirement: ApprovalRequirement, enter_pending: Callable[[str], Awaitable[None]],
                  should_continue: Callable[[], bool] = lambda: False, resumed: bool = False) -> None:
        """Returns when approved; raises ApprovalEnded when rejected, cancelled or expired, and
        ApprovalSuspended when the wait should go on in a new run (``should_continue``). A ``resumed``
        gate (``restore``) waits for the rest of the time its request has."""
        if resumed:
            assert self.opened is not None
            timeout = max(0.001, (self.opened.expires_at - workflow.now()).total_seconds())
        else:
            self.requirement = requirement
            self.opened = await self._control(
                "open_approval", OpenApproval(job_id=self.sub.job_id, owner_id=self.sub.owner_id,
                                              owner_name=self.sub.owner_name, config_name=self.sub.config_name,
                                              requirement=requirement), ApprovalOpened)
            self._set_state("pending")
            await enter_pending(f"waiting for approval by a {requirement.required_level} or higher: "
                                f"{requirement.reason}")
            self._notify("required")
            timeout = requirement.timeout_seconds
        try:
            await workflow.wait_condition(lambda: self.decision is not None or should_continue(),
                                          timeout=timedelta(seconds=timeout), timeout_summary="approval-expiry")
            if self.decision is None:
                await self._hand_over()
        except asyncio.TimeoutError:
            await self.close(ApprovalOutcome(request_id=self.opened.request_id, job_id=self.sub.job_id,
                                             status="expired", channel="system"))
            raise ApprovalEnded(f"approval request expired after {_hours(requirement.timeout_seconds)} "
                                "without a decision") from None
        d = self.decision
        assert d is not None
        status = STATUS_FOR_DECISION[d.decision]
        await self.close(ApprovalOutcome(request_id=self.opened.request_id, job_id=self.sub.job_id, status=status,
                                         actor_id=d.actor_id, actor_name=d.actor_name, channel=d.channel,
                                         comment=d.comment))
        if status == "rejected":
            raise ApprovalEnded(f"rejected by {d.actor_name}" + (f": {d.comment}" if d.comment else ""))
        if status == "cancelled":
            raise ApprovalEnded(f"approval request cancelled by {d.actor_name}")
        if status == "expired":
            raise ApprovalEnded(f"approval request expired early by {d.actor_name}"
                                + (f": {d.comment}" if d.comment else ""))

    async def _hand_over(self) -> None:
        """Stop taking decisions (each is answered "send it again", which the senders do: it reaches
        the next run), let the one being checked finish, let the e-mails go out, then leave the wait
        to the next run."""
        self.handing_over = True
        await workflow.wait_condition(lambda: not self.deciding.locked())
        await self.drain_notices()
        if self.decision is None:
            raise ApprovalSuspended()
        self.handing_over = False

    async def close(self, outcome: ApprovalOutcome) -> None:
        """Write the outcome, release a waiting update, tell the people concerned."""
        await self._control("close_approval", outcome)
        self.outcome = outcome
        self._set_state(outcome.status)
        for handle in self.notices:  # approvers still being mailed about a closed request: stop
            if not handle.done():
                handle.cancel()
        self._notify(outcome.status)

    async def _control(self, name: str, arg, result_type=None):
        return await control_activity(name, arg, result_type, finish_on_cancel=self.finish_controls)

    async def cancel_if_pending(self) -> None:
        """The job was cancelled while waiting: close the request as cancelled."""
        if self.state == "pending" and self.opened is not None:
            await self.close(ApprovalOutcome(request_id=self.opened.request_id, job_id=self.sub.job_id,
                                             status="cancelled", channel="system", comment="job cancelled"))

    async def drain_notices(self) -> None:
        """Let outstanding e-mails finish (each has its own retry limit) before the workflow ends."""
        if self.notices:
            await asyncio.gather(*self.notices, return_exceptions=True)

    def details(self) -> str | None:
        if self.opened is None:
            return None
        return f"approval `{self.opened.request_id}`: **{self.state}**" + (
            f" (rule {self.requirement.rule_name}, needs {self.requirement.required_level})" if self.requirement else "")

    def _notify(self, kind: str) -> None:
        assert self.opened is not None
        self.notices.append(workflow.start_activity(
            "send_approval_notice", ApprovalNotice(request_id=self.opened.request_id, kind=kind),
            start_to_close_timeout=timedelta(minutes=2), schedule_to_close_timeout=timedelta(hours=1),
            retry_policy=NOTICE_RETRY, summary=f"e-mail: approval {kind}"))

    def _set_state(self, state: str) -> None:
        self.state = state
        workflow.upsert_search_attributes([SA_APPROVAL_STATE.value_set(state)])


def _hours(seconds: float) -> str:
    hours = seconds / 3600.0
    return f"{hours:g} h" if hours >= 1 else f"{seconds:g} s"
