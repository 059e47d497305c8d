"""Long waits continue as new: a tiny history limit makes the job workflow (placement, approval) and
the GPU plane's dispatch workflow hand over to new runs many times, and the job ends exactly as it
would have in one run: same id, continuous transitions, a decision sent during a hand-over taken by
the next run. Each run's history replays, and those recorded as fixtures keep replaying."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer, Worker

from activities.temporal.approval_update import send_decision
from tests.workflows.test_approval_gate import LEAD, ApprovalFakes, pending
from tests.workflows.test_training_job import Fakes, finishes, record_history
from workflows.contracts import (
    AGENTS_CHANGED_SIGNAL, ERR_AGENT_UNAVAILABLE, ApprovalDecision, JobResult, JobSubmission, Placement,
    TrainingOutcome, TrainingTask, dispatch_workflow_id,
)
from workflows.gpu_dispatch import GpuDispatchWorkflow
from workflows.training_job import TrainingJobWorkflow

LIMIT = 100


async def replay_every_run(env, job_id: str, run_ids: list[str], workflow=TrainingJobWorkflow) -> None:
    """Each run's history replays; the job's first run (ends continued as new) and last run (starts
    from a carried state) are the recorded fixtures when recording."""
    for run_id in run_ids:
        history = await env.pyd_client.get_workflow_handle(job_id, run_id=run_id).fetch_history()
        if workflow is TrainingJobWorkflow and run_id in (run_ids[0], run_ids[-1]):
            record_history(history, suffix="-first-run" if run_id == run_ids[0] else "-last-run")
        await Replayer(workflows=[workflow], data_converter=pydantic_data_converter).replay_workflow(history)


async def run_with(env, fakes: Fakes, sub: JobSubmission, extra_activities=(), after_start=None) -> JobResult:
    fakes.endpoint = env.nexus_endpoint
    control = Worker(env.pyd_client, task_queue=fakes.control_queue, workflows=[TrainingJobWorkflow],
                     activities=[*fakes.control_activities(), *extra_activities])
    gpu = Worker(env.pyd_client, task_queue=fakes.queue, activities=[fakes.run_training])
    async with control, gpu:
        handle: WorkflowHandle = await env.pyd_client.start_workflow(
            TrainingJobWorkflow.run, sub, id=sub.job_id, task_queue=fakes.control_queue)
        if after_start:
            await after_start(handle)
        return await handle.result()  # follows the runs


async def taken_in(handle: WorkflowHandle, timeout: float = 30.0) -> None:
    """Until the current run has no workflow task pending: every signal sent so far was handled."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (await handle.describe()).raw_description.HasField("pending_workflow_task"):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the workflow did not take its signals in within {timeout} s")


def submission(recheck: float = 30.0) -> JobSubmission:
    return JobSubmission(job_id=f"job-{uuid.uuid4().hex[:12]}", owner_id="u-owner", owner_name="olga",
                         config_name="cfg", placement_recheck_seconds=recheck)


@pytest.mark.slow  # a long scenario: make slow (CI runs it after make test)
async def test_hundreds_of_placement_rechecks_span_many_runs_then_the_job_completes(wf_env):
    fakes = Fakes(finishes, placements=[Placement(reason="no agent is online")] * 200)
    fakes.max_history_events = LIMIT
    sub = submission()

    async def agents_come_and_go(handle: WorkflowHandle) -> None:
        """Each change of the agents makes the waiting job look for a pool again (as the API's nudge)."""
        while fakes.placements:
            await handle.signal(AGENTS_CHANGED_SIGNAL)  # (several may arrive in one task: one recheck)

    result = await run_with(wf_env, fakes, sub, after_start=agents_come_and_go)
    assert isinstance(result, JobResult) and (result.status, result.attempt) == ("completed", 1)
    assert fakes.placement_calls == 201
    assert len(fakes.runs) >= 10, fakes.runs  # evaluated once, then each new run took the binding over
    assert fakes.statuses() == ["queued", "queued", "running", "completed"]  # no repeated "waiting" entries
    assert [t.seq for t in fakes.transitions] == [1, 2, 3, 4]
    assert fakes.admissions == [sub.job_id] and fakes.releases == [sub.job_id]  # one slot, given back once
    described = await wf_env.pyd_client.get_workflow_handle(sub.job_id).describe()
    assert described.run_id == fakes.runs[-1] and described.search_attributes.get("JobStatus") == ["completed"]
    await replay_every_run(wf_env, sub.job_id, fakes.runs)


async def test_approval_wait_spans_runs_and_a_decision_sent_meanwhile_is_taken(wf_env):
    fakes = ApprovalFakes()
    fakes.max_history_events = LIMIT
    sub = submission()
    seen_runs: list[str] = []

    async def approve_after_several_runs(handle: WorkflowHandle) -> None:
        await pending(handle, fakes)
        while len(fakes.runs) < 4:  # every signal adds events: the wait hands over again and again
            await handle.signal(AGENTS_CHANGED_SIGNAL)
            await taken_in(handle)  # paced: a run that falls behind never piles up thousands of signals
            seen_runs[:] = fakes.runs
        decision = ApprovalDecision(decision="approve", message_id=f"apd-{uuid.uuid4().hex[:8]}", comment="ok", **LEAD)
        fakes.intents[decision.message_id] = decision
        outcome = await send_decision(wf_env.pyd_client, sub.job_id, decision)
        assert outcome.status == "approved"

    result = await run_with(wf_env, fakes, sub, [fakes.open_approval, fakes.close_approval, fakes.notice, fakes.check],
                            after_start=approve_after_several_runs)
    assert result.status == "completed"
    assert len(fakes.opened) == 1 and fakes.notices.count("required") == 1  # one request, one e-mail round
    assert [c.status for c in fakes.closed] == ["approved"]
    assert fakes.statuses() == ["pending_approval", "queued", "running", "completed"]
    await replay_every_run(wf_env, sub.job_id, fakes.runs)


async def test_a_decision_refused_during_the_hand_over_is_sent_again_to_the_next_run(wf_env):
    """The sender retries ``WorkflowContinuing``: a run handing over never swallows a decision."""
    fakes = ApprovalFakes()
    fakes.max_history_events = LIMIT
    sub = submission()
    outcomes = []

    async def race(handle: WorkflowHandle) -> None:
        await pending(handle, fakes)
        for i in range(40):  # decisions fired while signals push the run over its limit
            await handle.signal(AGENTS_CHANGED_SIGNAL)
        decision = ApprovalDecision(decision="approve", message_id=f"apd-{uuid.uuid4().hex[:8]}", **LEAD)
        fakes.intents[decision.message_id] = decision
        outcomes.append(await send_decision(wf_env.pyd_client, sub.job_id, decision))

    result = await run_with(wf_env, fakes, sub, [fakes.open_approval, fakes.close_approval, fakes.notice, fakes.check],
                            after_start=race)
    assert result.status == "completed" and outcomes[0].status == "approved" and len(fakes.runs) >= 2


async def test_the_dispatch_workflow_continues_as_new_between_tries(wf_env):
    tries: list[int] = []

    async def train(fakes: Fakes, task: TrainingTask) -> TrainingOutcome:
        tries.append(task.attempt)
        if len(tries) <= 20:
            raise ApplicationError("agent is draining", type=ERR_AGENT_UNAVAILABLE)
        return await finishes(fakes, task)

    fakes = Fakes(train, max_attempts=1)
    fakes.max_history_events = LIMIT
    sub = submission()
    result = await run_with(wf_env, fakes, sub)
    assert (result.status, result.attempt, tries) == ("completed", 21, list(range(1, 22)))
    dispatch_id = dispatch_workflow_id(sub.job_id, 1)
    runs = [w.run_id async for w in wf_env.pyd_client.list_workflows(f"WorkflowId = '{dispatch_id}'")]
    assert len(runs) >= 2, runs  # the Nexus operation followed the dispatch into its new run
    await replay_every_run(wf_env, dispatch_id, runs[::-1], workflow=GpuDispatchWorkflow)
