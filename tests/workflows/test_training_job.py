"""TrainingJobWorkflow against a real dev server, with the activities' I/O replaced by stand-ins
registered under the same activity names. Every finished history is replayed afterwards, so a
non-deterministic change of the workflow code fails here."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, Worker

from workflows.contracts import (
    ERR_AGENT_UNAVAILABLE, ERR_TRAINING_FAILED, RUN_TRAINING_ACTIVITY, AdmissionRequest, AdmissionTicket, AgentStarted, EvaluatedJob, JobResult,
    JobSubmission, OutputFile, Placement, PlacementRequest, TrainingAssignment, TrainingConfigSpec,
    TrainingOutcome, Transition,
)
from tests.helpers import wait_until
from workflows.training_job import TrainingJobWorkflow

HISTORIES = Path(__file__).parent.parent / "fixtures" / "histories"


class Fakes:
    """Records transitions; scripted placement and training behaviour per test."""

    def __init__(self, training, placements: list[Placement] | None = None) -> None:
        self.transitions: list[Transition] = []
        self.training = training
        self.placements = placements or []
        self.placement_calls = 0
        self.queue = f"gpu.{uuid.uuid4().hex[:8]}"
        self.control_queue = f"control-{uuid.uuid4().hex[:8]}"
        self.admissions: list[str] = []
        self.releases: list[str] = []

    @activity.defn(name="evaluate_submission")
    async def evaluate(self, sub: JobSubmission) -> EvaluatedJob:
        if sub.config_name == "missing":
            raise ApplicationError("config 'missing' not found", type="InvalidSubmission", non_retryable=True)
        return EvaluatedJob(config=TrainingConfigSpec(name=sub.config_name, command=["train"]), gpu_count=1)

    @activity.defn(name="resolve_placement")
    async def place(self, req: PlacementRequest) -> Placement:
        self.placement_calls += 1
        if self.placements:
            return self.placements.pop(0)
        return Placement(task_queue=self.queue, agent_count=1)

    @activity.defn(name="record_transition")
    async def record(self, t: Transition) -> None:
        self.transitions.append(t)

    @activity.defn(name=RUN_TRAINING_ACTIVITY)
    async def run_training(self, a: TrainingAssignment) -> TrainingOutcome:
        return await self.training(a)

    @activity.defn(name="request_admission")
    async def request_admission(self, req: AdmissionRequest) -> AdmissionTicket:
        self.admissions.append(req.job_id)
        return AdmissionTicket(admitted=True)

    @activity.defn(name="release_admission")
    async def release_admission(self, job_id: str) -> None:
        self.releases.append(job_id)

    def control_activities(self) -> list:
        return [self.evaluate, self.place, self.record, self.request_admission, self.release_admission]

    def statuses(self) -> list[str]:
        return [t.status for t in self.transitions]


async def claim(a: TrainingAssignment, agent: str = "agent-1") -> None:
    info = activity.info()
    await activity.client().get_workflow_handle(info.workflow_id).signal(
        TrainingJobWorkflow.agent_started, AgentStarted(agent_id=f"w_{agent}", agent_name=agent, attempt=a.attempt))


async def run_job(env, fakes: Fakes, config: str = "cfg", after_start=None, heartbeat_timeout: float = 120.0):
    sub = JobSubmission(job_id=f"job-{uuid.uuid4().hex[:12]}", owner_id="u1", owner_name="alice",
                        config_name=config, heartbeat_timeout_seconds=heartbeat_timeout,
                        placement_recheck_seconds=30)
    control = Worker(env.pyd_client, task_queue=fakes.control_queue, workflows=[TrainingJobWorkflow],
                     activities=fakes.control_activities())
    gpu = Worker(env.pyd_client, task_queue=fakes.queue, activities=[fakes.run_training],
                 max_heartbeat_throttle_interval=timedelta(milliseconds=200))
    async with control, gpu:
        handle: WorkflowHandle = await env.pyd_client.start_workflow(
            TrainingJobWorkflow.run, sub, id=sub.job_id, task_queue=fakes.control_queue)
        if after_start:
            await after_start(handle)
        try:
            result = await handle.result()
        except WorkflowFailureError as err:
            result = err
        history = await handle.fetch_history()
    if os.environ.get("SIMPLETUNER_RECORD_HISTORIES"):  # refresh the replay fixtures on purpose only
        name = os.environ.get("PYTEST_CURRENT_TEST", "job").split("::")[-1].split(" ")[0]
        repo = str(HISTORIES.parents[2]) + "/"  # stack traces: keep paths repo-relative
        HISTORIES.joinpath(f"{name}.json").write_text(history.to_json().replace(repo, ""))
    await Replayer(workflows=[TrainingJobWorkflow], data_converter=pydantic_data_converter).replay_workflow(history)
    return result, history


async def test_completes_and_records_every_transition(wf_env):
    async def train(a: TrainingAssignment) -> TrainingOutcome:
        await claim(a)
        return TrainingOutcome(exit_code=0, agent_id="w_agent-1", agent_name="agent-1",
                               outputs=[OutputFile(name="model.npz", size=3, sha256="abc")])

    fakes = Fakes(train)
    result, _ = await run_job(wf_env, fakes)
    assert isinstance(result, JobResult)
    assert (result.status, result.attempt, result.agent_name) == ("completed", 1, "agent-1")
    assert fakes.statuses() == ["queued", "running", "completed"]
    assert [t.seq for t in fakes.transitions] == [1, 2, 3]
    assert fakes.transitions[-1].outputs[0].name == "model.npz"


async def test_waits_for_placement_until_agents_change(wf_env):
    async def train(a: TrainingAssignment) -> TrainingOutcome:
        await claim(a)
        return TrainingOutcome(exit_code=0, agent_id="w_agent-1", agent_name="agent-1")

    fakes = Fakes(train, placements=[Placement(reason="no agent is online")])

    async def nudge(handle: WorkflowHandle) -> None:
        await wait_until(lambda: "queued" in fakes.statuses(), 10, "the job to report queued")
        assert fakes.transitions[0].queue_reason == "no agent is online"
        await handle.signal(TrainingJobWorkflow.agents_changed_signal)

    result, _ = await run_job(wf_env, fakes, after_start=nudge)
    assert result.status == "completed"
    assert fakes.placement_calls == 2


async def test_process_failure_fails_without_retry(wf_env):
    async def train(a: TrainingAssignment) -> TrainingOutcome:
        await claim(a)
        raise ApplicationError("training process exited with code 3", type=ERR_TRAINING_FAILED, non_retryable=True)

    fakes = Fakes(train)
    result, _ = await run_job(wf_env, fakes)
    assert (result.status, result.attempt) == ("failed", 1)
    assert "exited with code 3" in result.error


async def test_lost_agent_retries_on_next_attempt(wf_env):
    async def train(a: TrainingAssignment) -> TrainingOutcome:
        await claim(a, agent=f"agent-{a.attempt}")
        if a.attempt == 1:
            await asyncio.sleep(30)  # never heartbeats: the 1 s heartbeat timeout fires
        return TrainingOutcome(exit_code=0, agent_id="w_agent-2", agent_name="agent-2")

    fakes = Fakes(train)
    result, _ = await run_job(wf_env, fakes, heartbeat_timeout=1.0)
    assert (result.status, result.attempt, result.agent_name) == ("completed", 2, "agent-2")
    assert fakes.statuses() == ["queued", "running", "queued", "running", "completed"]


async def test_gives_up_after_max_attempts(wf_env):
    async def train(a: TrainingAssignment) -> TrainingOutcome:
        raise ApplicationError("disk full on agent", type="AgentCrashed")

    fakes = Fakes(train)
    result, _ = await run_job(wf_env, fakes)
    assert (result.status, result.attempt) == ("failed", 3)
    assert "gave up after 3 lost attempts" in result.error and "disk full" in result.error


async def test_handback_does_not_use_an_attempt(wf_env):
    calls: list[int] = []

    async def train(a: TrainingAssignment) -> TrainingOutcome:
        calls.append(a.attempt)
        if len(calls) == 1:
            raise ApplicationError("agent is draining", type=ERR_AGENT_UNAVAILABLE)
        await claim(a)
        return TrainingOutcome(exit_code=0, agent_id="w_agent-1", agent_name="agent-1")

    fakes = Fakes(train)
    result, _ = await run_job(wf_env, fakes)
    assert (result.status, result.attempt, calls) == ("completed", 2, [1, 2])


async def test_unknown_config_fails_at_evaluation(wf_env):
    async def train(a: TrainingAssignment) -> TrainingOutcome:  # pragma: no cover - never dispatched
        raise AssertionError("must not run")

    fakes = Fakes(train)
    result, _ = await run_job(wf_env, fakes, config="missing")
    assert result.status == "failed" and "not found" in result.error
    assert fakes.statuses() == ["failed"]


async def test_cancel_reaches_the_running_activity(wf_env):
    cancelled = asyncio.Event()

    async def train(a: TrainingAssignment) -> TrainingOutcome:
        await claim(a)
        try:
            while True:
                activity.heartbeat()
                await asyncio.sleep(0.1)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    fakes = Fakes(train)

    async def cancel_when_running(handle: WorkflowHandle) -> None:
        await wait_until(lambda: "running" in fakes.statuses(), 10, "the job to run")
        await handle.cancel()

    result, _ = await run_job(wf_env, fakes, after_start=cancel_when_running)
    assert isinstance(result, WorkflowFailureError) and isinstance(result.cause, CancelledError)
    assert cancelled.is_set()
    assert fakes.statuses()[-1] == "cancelled"


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_recorded_histories_replay(path):
    """Histories recorded from earlier versions must still replay (guard changes with workflow.patched)."""
    from temporalio.client import WorkflowHistory

    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await Replayer(workflows=[TrainingJobWorkflow], data_converter=pydantic_data_converter).replay_workflow(history)
