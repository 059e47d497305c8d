"""The approval wait inside TrainingJobWorkflow, on a real dev server with stand-in activities.

Decisions go through the real ``decide_approval`` update: its validator (state only) and its handler,
which has ``check_approval_decision`` (here a stand-in with the database's rules) confirm each one.
Expiry is a real durable timer (a short configured timeout). Every history is replayed afterwards.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer, Worker

from tests.helpers import wait_until
from tests.workflows.test_training_job import HISTORIES, Fakes, finishes
from workflows.contracts import (
    APPROVAL_DECISION_UPDATE, ERR_APPROVAL_FORBIDDEN, ERR_APPROVAL_NOT_PENDING, SA_APPROVAL_STATE,
    ApprovalDecision, ApprovalNotice, ApprovalOpened, ApprovalOutcome, ApprovalRequirement, DecisionCheck,
    DecisionVerdict, EvaluatedJob, JobResult, JobSubmission, OpenApproval, TrainingConfigSpec, approver_eligible,
)
from workflows.training_job import TrainingJobWorkflow

# Who is who in the stand-in database: level priority, holds admin.approve, holds it by a personal grant.
PEOPLE = {"u-owner": (20, False, False), "u-lead": (30, True, False), "u-lead2": (30, True, False),
          "u-res": (20, False, False), "u-granted-lead": (30, True, True), "u-norights-lead": (30, False, False)}
LEAD = dict(actor_id="u-lead", actor_name="lena")
RESEARCHER = dict(actor_id="u-res", actor_name="rick")


class ApprovalFakes(Fakes):
    def __init__(self, timeout_seconds: float = 3600.0, required_level: str = "lead") -> None:
        super().__init__(finishes)
        self.requirement = ApprovalRequirement(rule_id="rule-1", rule_name="high_cost", reason="cost $100 > $50",
                                               required_level=required_level, timeout_seconds=timeout_seconds)
        self.opened: list[OpenApproval] = []
        self.closed: list[ApprovalOutcome] = []
        self.notices: list[str] = []
        self.intents: dict[str, ApprovalDecision] = {}  # decisions recorded by the API or the mailbox
        self.checks: list[str] = []

    @activity.defn(name="evaluate_submission")
    async def evaluate(self, sub: JobSubmission) -> EvaluatedJob:
        self.bind()
        return EvaluatedJob(config=TrainingConfigSpec(name=sub.config_name, command=["train"]), gpu_count=1,
                            cost_estimate_usd=100.0, approval=self.requirement, limits=self.limits(sub),
                            nexus_endpoint=self.endpoint)

    @activity.defn(name="open_approval")
    async def open_approval(self, req: OpenApproval) -> ApprovalOpened:
        self.opened.append(req)
        return ApprovalOpened(request_id="apr-1", expires_at=datetime.now(timezone.utc)
                              + timedelta(seconds=self.requirement.timeout_seconds))

    @activity.defn(name="close_approval")
    async def close_approval(self, outcome: ApprovalOutcome) -> None:
        self.closed.append(outcome)

    @activity.defn(name="send_approval_notice")
    async def notice(self, n: ApprovalNotice) -> int:
        self.notices.append(n.kind)
        return 1

    @activity.defn(name="check_approval_decision")
    async def check(self, check: DecisionCheck) -> DecisionVerdict:
        """As ``governance.approvals.check_decision``: a recorded decision, and an actor who may make it."""
        d = check.decision
        self.checks.append(d.actor_id)
        recorded = self.intents.pop(d.message_id or "", None)
        if recorded is None or recorded.actor_id != d.actor_id or recorded.decision != d.decision:
            return DecisionVerdict(allowed=False, error_type=ERR_APPROVAL_FORBIDDEN, message="not recorded")
        level, may_approve, granted = PEOPLE[d.actor_id]
        if d.decision == "cancel":
            ok = d.actor_id == "u-owner"
        else:
            ok = d.actor_id != "u-owner" and approver_eligible(self.requirement.required_level, level, may_approve,
                                                               granted)
        if not ok:
            return DecisionVerdict(allowed=False, error_type=ERR_APPROVAL_FORBIDDEN, message=f"{d.actor_name} may not")
        return DecisionVerdict(allowed=True, actor_name=d.actor_name)


async def start(env, fakes: ApprovalFakes) -> tuple[WorkflowHandle, list[Worker]]:
    fakes.endpoint = env.nexus_endpoint
    sub = JobSubmission(job_id=f"job-{uuid.uuid4().hex[:12]}", owner_id="u-owner", owner_name="olga",
                        config_name="big", placement_recheck_seconds=30)
    control = Worker(env.pyd_client, task_queue=fakes.control_queue, workflows=[TrainingJobWorkflow],
                     activities=[*fakes.control_activities(), fakes.open_approval, fakes.close_approval,
                                 fakes.notice, fakes.check])
    gpu = Worker(env.pyd_client, task_queue=fakes.queue, activities=[fakes.run_training])
    handle = await env.pyd_client.start_workflow(TrainingJobWorkflow.run, sub, id=sub.job_id,
                                                 task_queue=fakes.control_queue)
    return handle, [control, gpu]


async def decide(handle: WorkflowHandle, fakes: ApprovalFakes | None, decision: str, **actor) -> ApprovalOutcome:
    """Send a decision as the API does, recording it first (``fakes`` None: a forged update)."""
    update = ApprovalDecision(decision=decision, message_id=f"apd-{uuid.uuid4().hex[:8]}", **actor)
    if fakes is not None:
        fakes.intents[update.message_id] = update
    return await handle.execute_update(APPROVAL_DECISION_UPDATE, update, id=update.message_id,
                                       result_type=ApprovalOutcome)


async def refused(handle: WorkflowHandle, fakes: ApprovalFakes | None, decision: str, **actor) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await decide(handle, fakes, decision, **actor)
    assert isinstance(info.value.cause, ApplicationError)
    return info.value.cause


async def finish(handle: WorkflowHandle):
    result = await handle.result()
    history = await handle.fetch_history()
    if os.environ.get("SIMPLETUNER_RECORD_HISTORIES"):
        name = os.environ.get("PYTEST_CURRENT_TEST", "job").split("::")[-1].split(" ")[0]
        repo = str(HISTORIES.parents[2]) + "/"
        HISTORIES.joinpath(f"checked-{name}.json").write_text(history.to_json().replace(repo, ""))
    await Replayer(workflows=[TrainingJobWorkflow], data_converter=pydantic_data_converter).replay_workflow(history)
    return result


async def pending(handle: WorkflowHandle, fakes: ApprovalFakes) -> None:
    await wait_until(lambda: "required" in fakes.notices, timeout=10)


async def test_approval_by_a_lead_runs_the_job_and_refusals_change_nothing(wf_env):
    fakes = ApprovalFakes()
    handle, workers = await start(wf_env, fakes)
    async with workers[0], workers[1]:
        await pending(handle, fakes)
        assert (await handle.query(TrainingJobWorkflow.state))["status"] == "pending_approval"
        desc = await handle.describe()
        assert desc.typed_search_attributes.get(SA_APPROVAL_STATE) == "pending"
        # a forged update claiming a lead, self-approval, a researcher, a lead without admin.approve:
        # each checked against the database and refused
        assert (await refused(handle, None, "approve", **LEAD)).type == ERR_APPROVAL_FORBIDDEN
        assert (await refused(handle, fakes, "approve", actor_id="u-owner", actor_name="olga")).type == \
            ERR_APPROVAL_FORBIDDEN
        assert (await refused(handle, fakes, "approve", **RESEARCHER)).type == ERR_APPROVAL_FORBIDDEN
        assert (await refused(handle, fakes, "approve", actor_id="u-norights-lead", actor_name="nora")).type == \
            ERR_APPROVAL_FORBIDDEN
        assert fakes.closed == [] and fakes.statuses() == ["pending_approval"]
        outcome = await decide(handle, fakes, "approve", comment="go", **LEAD)
        assert (outcome.status, outcome.actor_name, outcome.comment) == ("approved", "lena", "go")
        # a decided request answers "not pending" (the validator: no check runs)
        checks = len(fakes.checks)
        assert (await refused(handle, fakes, "reject", **LEAD)).type == ERR_APPROVAL_NOT_PENDING
        assert len(fakes.checks) == checks
        result = await finish(handle)
    assert isinstance(result, JobResult) and result.status == "completed"
    assert fakes.statuses() == ["pending_approval", "queued", "running", "completed"]
    assert [c.status for c in fakes.closed] == ["approved"]
    assert fakes.notices == ["required", "approved"]
    assert (await handle.describe()).typed_search_attributes.get(SA_APPROVAL_STATE) == "approved"


async def test_rejection_cancels_the_job_with_the_reason(wf_env):
    fakes = ApprovalFakes()
    handle, workers = await start(wf_env, fakes)
    async with workers[0], workers[1]:
        await pending(handle, fakes)
        outcome = await decide(handle, fakes, "reject", comment="too expensive", channel="email", **LEAD)
        assert outcome.status == "rejected" and outcome.channel == "email"
        result = await finish(handle)
    assert result.status == "cancelled" and result.error == "rejected by lena: too expensive"
    assert fakes.placement_calls == 0  # never queued
    assert fakes.notices == ["required", "rejected"]


async def test_an_approver_expires_the_request_early(wf_env):
    """``POST /api/approvals/expire``: the decision ``expire`` ends the wait as its timer would."""
    fakes = ApprovalFakes()
    handle, workers = await start(wf_env, fakes)
    async with workers[0], workers[1]:
        await pending(handle, fakes)
        outcome = await decide(handle, fakes, "expire", comment="stale", **LEAD)
        assert outcome.status == "expired"
        result = await finish(handle)
    assert result.status == "cancelled" and result.error == "approval request expired early by lena: stale"
    assert fakes.placement_calls == 0
    assert [c.status for c in fakes.closed] == ["expired"]


async def test_admin_level_rule_refuses_a_lead_unless_granted_personally(wf_env):
    fakes = ApprovalFakes(required_level="admin")
    handle, workers = await start(wf_env, fakes)
    async with workers[0], workers[1]:
        await pending(handle, fakes)
        assert (await refused(handle, fakes, "approve", **LEAD)).type == ERR_APPROVAL_FORBIDDEN
        outcome = await decide(handle, fakes, "approve", actor_id="u-granted-lead", actor_name="gwen")
        assert outcome.status == "approved"
        assert (await finish(handle)).status == "completed"


async def test_expiry_by_timer_cancels_and_late_decisions_are_refused(wf_env):
    fakes = ApprovalFakes(timeout_seconds=1.5)
    handle, workers = await start(wf_env, fakes)
    async with workers[0], workers[1]:
        result = await finish(handle)
        assert result.status == "cancelled" and "expired" in (result.error or "")
        assert [c.status for c in fakes.closed] == ["expired"]
        assert fakes.notices == ["required", "expired"]
        with pytest.raises(Exception):  # the workflow is closed: no update is accepted any more
            await decide(handle, fakes, "approve", **LEAD)


async def test_submitter_cancels_the_request_and_others_may_not(wf_env):
    fakes = ApprovalFakes()
    handle, workers = await start(wf_env, fakes)
    async with workers[0], workers[1]:
        await pending(handle, fakes)
        assert (await refused(handle, fakes, "cancel", **RESEARCHER)).type == ERR_APPROVAL_FORBIDDEN
        outcome = await decide(handle, fakes, "cancel", actor_id="u-owner", actor_name="olga")
        assert outcome.status == "cancelled"
        result = await finish(handle)
    assert result.status == "cancelled" and "cancelled by olga" in (result.error or "")


async def test_cancelling_the_job_closes_the_pending_request(wf_env):
    fakes = ApprovalFakes()
    handle, workers = await start(wf_env, fakes)
    async with workers[0], workers[1]:
        await pending(handle, fakes)
        await handle.cancel()
        with pytest.raises(Exception):
            await handle.result()
    assert [c.status for c in fakes.closed] == ["cancelled"]
    assert fakes.statuses()[-1] == "cancelled"


async def test_two_concurrent_approvals_decide_once(wf_env):
    fakes = ApprovalFakes()
    handle, workers = await start(wf_env, fakes)
    async with workers[0], workers[1]:
        await pending(handle, fakes)
        other_lead = {"actor_id": "u-lead2", "actor_name": "leo"}
        results = await asyncio.gather(decide(handle, fakes, "approve", **LEAD),
                                       decide(handle, fakes, "reject", **other_lead), return_exceptions=True)
        decided = [r for r in results if isinstance(r, ApprovalOutcome)]
        assert len(decided) == 1, results
        assert (await finish(handle)).status in ("completed", "cancelled")
    assert len(fakes.closed) == 1
