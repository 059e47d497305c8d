"""TrainingJobWorkflow against a real dev server, with the control activities' I/O replaced by
stand-ins registered under the same activity names, and the real GPU plane: the Nexus endpoint, the
handler and GpuDispatchWorkflow scheduling ``run_training`` on a pool queue. The stand-ins keep the
database's part in memory (claims, exit reports). Every finished history is replayed afterwards, so
a non-deterministic change of the workflow code fails here."""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.worker import Replayer, Worker

from tests.helpers import wait_until
from workflows.contracts import (
    AGENT_STARTED_SIGNAL, ERR_AGENT_UNAVAILABLE, ERR_TRAINING_FAILED, RUN_TRAINING_ACTIVITY, AdmissionRequest,
    AdmissionTicket, AgentStarted, ClaimCheck, ConfirmedClaim, DispatchOpening, DispatchTicket, EvaluatedJob,
    JobResult, JobSubmission, Placement, PlacementRequest, RunContinuation, RunLimits, SettledDispatch, SettleRequest,
    TrainingConfigSpec, TrainingOutcome, TrainingTask, Transition, dispatch_workflow_id,
)
from workflows.gpu_dispatch import GpuDispatchWorkflow
from workflows.training_job import TrainingJobWorkflow

HISTORIES = Path(__file__).parent.parent / "fixtures" / "histories"


@dataclass
class Claim:
    agent_id: str
    agent_name: str
    exit_code: int | None = None
    released: bool = False
    outputs: list = field(default_factory=list)


class Fakes:
    """The control activities, with the database's part in memory; scripted placement and training."""

    def __init__(self, training, placements: list[Placement] | None = None, max_attempts: int = 3) -> None:
        self.transitions: list[Transition] = []
        self.training = training
        self.placements = placements or []
        self.placement_calls = 0
        self.queue = f"gpu.{uuid.uuid4().hex[:8]}"
        self.control_queue = f"control-{uuid.uuid4().hex[:8]}"
        self.admissions: list[str] = []
        self.releases: list[str] = []
        self.claims: dict[int, Claim] = {}
        self.dispatches: list[DispatchOpening] = []
        self.settled: list[SettledDispatch] = []
        self.unconfirmed: list[ClaimCheck] = []
        self.max_attempts = max_attempts
        self.endpoint = ""
        self.max_history_events: int | None = None
        self.bound_run = ""  # the run the evaluation saw (the database's binding)
        self.runs: list[str] = []  # every run of the job's workflow, in order

    @activity.defn(name="evaluate_submission")
    async def evaluate(self, sub: JobSubmission) -> EvaluatedJob:
        self.bind()
        if sub.config_name == "missing":
            raise ApplicationError("config 'missing' not found", type="InvalidSubmission", non_retryable=True)
        return EvaluatedJob(config=TrainingConfigSpec(name=sub.config_name, command=["train"]), gpu_count=1,
                            limits=self.limits(sub), nexus_endpoint=self.endpoint)

    def bind(self) -> None:
        """The evaluation binds the job to the run that evaluated it."""
        self.bound_run = activity.info().workflow_run_id
        self.runs.append(self.bound_run)

    def limits(self, sub: JobSubmission) -> RunLimits:
        return RunLimits(max_attempts=self.max_attempts, heartbeat_timeout_seconds=sub.heartbeat_timeout_seconds,
                         placement_recheck_seconds=sub.placement_recheck_seconds, dispatch_start_timeout_seconds=30,
                         max_history_events=self.max_history_events)

    @activity.defn(name="resolve_placement")
    async def place(self, req: PlacementRequest) -> Placement:
        self.placement_calls += 1
        if self.placements:
            return self.placements.pop(0)
        return Placement(task_queue=self.queue, agent_count=1)

    @activity.defn(name="record_transition")
    async def record(self, t: Transition) -> None:
        self.transitions.append(t)

    @activity.defn(name="request_admission")
    async def request_admission(self, req: AdmissionRequest) -> AdmissionTicket:
        self.admissions.append(req.job_id)
        return AdmissionTicket(admitted=True)

    @activity.defn(name="confirm_admission")
    async def confirm_admission(self, job_id: str) -> AdmissionTicket:
        return AdmissionTicket(admitted=False, reason="no admission recorded")

    @activity.defn(name="release_admission")
    async def release_admission(self, job_id: str) -> None:
        self.releases.append(job_id)

    @activity.defn(name="open_dispatch")
    async def open_dispatch(self, opening: DispatchOpening) -> DispatchTicket:
        self.dispatches.append(opening)
        if opening.transition is not None:
            self.transitions.append(opening.transition)
        return DispatchTicket(dispatch=len(self.dispatches), first_attempt=opening.first_attempt,
                              last_attempt=opening.first_attempt + opening.attempts - 1)

    @activity.defn(name="confirm_claim")
    async def confirm_claim(self, check: ClaimCheck) -> ConfirmedClaim:
        claim = self.claims.get(check.attempt)
        if claim is None or claim.agent_id != check.agent_id:
            self.unconfirmed.append(check)
            return ConfirmedClaim(confirmed=False, reason="no such claim")
        return ConfirmedClaim(confirmed=True, attempt=check.attempt, agent_id=claim.agent_id,
                              agent_name=claim.agent_name)

    @activity.defn(name="settle_dispatch")
    async def settle(self, req: SettleRequest) -> SettledDispatch:
        """As ``capacity.dispatches.settle``: the claims and the claiming agent's exit decide."""
        claimed = sorted(self.claims)
        last = claimed[-1] if claimed else 0
        lost = {self.claims[a].agent_id: datetime.now(timezone.utc) for a in claimed
                if self.claims[a].exit_code is None and not self.claims[a].released}
        reported = req.reported
        settled = SettledDispatch(outcome="lost", attempt=last, lost_agents=lost,
                                  error=reported.error if reported else None)
        if last:
            settled.agent_id, settled.agent_name = self.claims[last].agent_id, self.claims[last].agent_name
        if last and self.claims[last].exit_code is not None:
            settled.lost_agents.pop(self.claims[last].agent_id, None)
            code = self.claims[last].exit_code
            settled.outcome = "completed" if code == 0 else "failed"
            settled.error = None if code == 0 else f"training process exited with code {code}"
        else:
            settled.lost_attempts = max(len(lost), reported.lost if reported else 0)
            if reported and reported.outcome == "not_started" and not claimed:
                settled.outcome = "not_started"
        self.settled.append(settled)
        return settled

    @activity.defn(name=RUN_TRAINING_ACTIVITY)
    async def run_training(self, task: TrainingTask) -> TrainingOutcome:
        return await self.training(self, task)

    @activity.defn(name="continue_job_run")
    async def continue_job_run(self, req: RunContinuation) -> None:
        """As the real one: the binding moves only to the run that continues the bound one."""
        info = activity.info()
        if self.bound_run == info.workflow_run_id:
            return  # a retry (its first completion was lost, e.g. a slow workflow task): already moved
        assert req.previous_run_id == self.bound_run, (req.previous_run_id, self.bound_run)
        self.bound_run = info.workflow_run_id
        self.runs.append(info.workflow_run_id)

    def control_activities(self) -> list:
        return [self.evaluate, self.place, self.record, self.request_admission, self.confirm_admission,
                self.release_admission, self.open_dispatch, self.confirm_claim, self.settle, self.continue_job_run]

    def statuses(self) -> list[str]:
        return [t.status for t in self.transitions]


async def claim(fakes: Fakes, task: TrainingTask, agent: str = "agent-1") -> None:
    """What the API does when an agent claims: record it, then tell the job's workflow."""
    fakes.claims[task.attempt] = Claim(agent_id=f"w_{agent}", agent_name=agent)
    await activity.client().get_workflow_handle(task.job_id).signal(
        AGENT_STARTED_SIGNAL, AgentStarted(agent_id=f"w_{agent}", agent_name=agent, attempt=task.attempt))


def exited(fakes: Fakes, task: TrainingTask, code: int) -> None:
    fakes.claims[task.attempt].exit_code = code


async def run_job(env, fakes: Fakes, config: str = "cfg", after_start=None, heartbeat_timeout: float = 120.0):
    fakes.endpoint = env.nexus_endpoint
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
    record_history(history)
    await Replayer(workflows=[TrainingJobWorkflow], data_converter=pydantic_data_converter).replay_workflow(history)
    return result, history


def record_history(history, suffix: str = "", prefix: str = "checked-") -> None:
    if os.environ.get("SIMPLETUNER_RECORD_HISTORIES"):  # refresh the replay fixtures on purpose only
        name = os.environ.get("PYTEST_CURRENT_TEST", "job").split("::")[-1].split(" ")[0]
        name = re.sub(r"\[(.*)\]$", r"-\1", name)  # parameters: no brackets in file names
        repo = str(HISTORIES.parents[2]) + "/"  # stack traces: keep paths repo-relative
        HISTORIES.joinpath(f"{prefix}{name}{suffix}.json").write_text(history.to_json().replace(repo, ""))


async def finishes(fakes: Fakes, task: TrainingTask, agent: str = "agent-1") -> TrainingOutcome:
    await claim(fakes, task, agent)
    exited(fakes, task, 0)
    return TrainingOutcome(exit_code=0, agent_id=f"w_{agent}", agent_name=agent)


async def test_completes_through_the_gpu_plane_and_records_every_transition(wf_env):
    async def train(fakes: Fakes, task: TrainingTask) -> TrainingOutcome:
        assert set(TrainingTask.model_fields) == {"job_id", "attempt"}  # nothing else reaches the GPU plane
        return await finishes(fakes, task)

    fakes = Fakes(train)
    result, _ = await run_job(wf_env, fakes)
    assert isinstance(result, JobResult)
    assert (result.status, result.attempt, result.agent_name) == ("completed", 1, "agent-1")
    assert fakes.statuses() == ["queued", "running", "completed"]
    assert [t.seq for t in fakes.transitions] == [1, 2, 3]
    assert [s.outcome for s in fakes.settled] == ["completed"]
    assert fakes.dispatches[0].task_queue == fakes.queue and fakes.dispatches[0].first_attempt == 1


async def test_waits_for_placement_until_agents_change(wf_env):
    fakes = Fakes(finishes, placements=[Placement(reason="no agent is online")])

    async def nudge(handle: WorkflowHandle) -> None:
        await wait_until(lambda: "queued" in fakes.statuses(), 10, "the job to report queued")
        assert fakes.transitions[0].queue_reason == "no agent is online"
        await handle.signal(TrainingJobWorkflow.agents_changed_signal)

    result, _ = await run_job(wf_env, fakes, after_start=nudge)
    assert result.status == "completed"
    assert fakes.placement_calls == 2


async def test_process_failure_fails_without_retry(wf_env):
    async def train(fakes: Fakes, task: TrainingTask) -> TrainingOutcome:
        await claim(fakes, task)
        exited(fakes, task, 3)
        raise ApplicationError("training process exited with code 3", type=ERR_TRAINING_FAILED, non_retryable=True)

    fakes = Fakes(train)
    result, _ = await run_job(wf_env, fakes)
    assert (result.status, result.attempt) == ("failed", 1)
    assert "exited with code 3" in result.error
    assert len(fakes.dispatches) == 1


async def test_lost_agent_retries_on_the_next_attempt_inside_the_dispatch(wf_env):
    async def train(fakes: Fakes, task: TrainingTask) -> TrainingOutcome:
        await claim(fakes, task, agent=f"agent-{task.attempt}")
        if task.attempt == 1:
            await asyncio.sleep(30)  # never heartbeats: the 1 s heartbeat timeout fires
        exited(fakes, task, 0)
        return TrainingOutcome(exit_code=0, agent_id="w_agent-2", agent_name="agent-2")

    fakes = Fakes(train)
    result, _ = await run_job(wf_env, fakes, heartbeat_timeout=1.0)
    assert (result.status, result.attempt, result.agent_name) == ("completed", 2, "agent-2")
    assert fakes.statuses() == ["queued", "running", "running", "completed"]
    assert len(fakes.dispatches) == 1  # the GPU plane's dispatch workflow retried, not the job workflow


async def test_gives_up_after_max_attempts(wf_env):
    async def train(fakes: Fakes, task: TrainingTask) -> TrainingOutcome:
        await claim(fakes, task, agent=f"agent-{task.attempt}")
        raise ApplicationError("disk full on agent", type="AgentCrashed")

    fakes = Fakes(train)
    result, _ = await run_job(wf_env, fakes)
    assert (result.status, result.attempt) == ("failed", 3)
    assert "gave up after 3 lost attempts" in result.error and "disk full" in result.error


async def test_handback_does_not_use_an_attempt(wf_env):
    calls: list[int] = []

    async def train(fakes: Fakes, task: TrainingTask) -> TrainingOutcome:
        calls.append(task.attempt)
        if len(calls) == 1:
            raise ApplicationError("agent is draining", type=ERR_AGENT_UNAVAILABLE)
        return await finishes(fakes, task)

    fakes = Fakes(train, max_attempts=1)  # one lost agent would fail the job: the hand-back must not count
    result, _ = await run_job(wf_env, fakes)
    assert (result.status, result.attempt, calls) == ("completed", 2, [1, 2])


async def test_unknown_config_fails_at_evaluation(wf_env):
    async def train(fakes: Fakes, task: TrainingTask) -> TrainingOutcome:  # pragma: no cover - never dispatched
        raise AssertionError("must not run")

    fakes = Fakes(train)
    result, _ = await run_job(wf_env, fakes, config="missing")
    assert result.status == "failed" and "not found" in result.error
    assert fakes.statuses() == ["failed"]


async def test_cancel_reaches_the_running_activity_across_the_bridge(wf_env):
    cancelled = asyncio.Event()

    async def train(fakes: Fakes, task: TrainingTask) -> TrainingOutcome:
        await claim(fakes, task)
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
    assert len(fakes.settled) == 1  # the open dispatch was closed, so nothing can claim it any more


@pytest.mark.parametrize("when", ["handing_back", "before_claim", "after_claim", "when_running"])
@pytest.mark.parametrize("continue_as_new", [False, True], ids=["one_run", "new_run_per_try"])
async def test_cancel_reaches_the_next_attempt_after_a_hand_back(wf_env, when, continue_as_new):
    """The agent of attempt 1 hands the job back (shutdown); a cancel sent while it does so, or as
    attempt 2 starts on another agent at each point of its start, ends the job as cancelled, with
    attempt 2 (if it started at all) cancelled too."""
    cancelled = asyncio.Event()
    started = asyncio.Event()
    claimed = asyncio.Event()

    async def train(fakes: Fakes, task: TrainingTask) -> TrainingOutcome:
        if task.attempt == 1:
            await claim(fakes, task, agent="agent-a")
            await wait_until(lambda: "running" in fakes.statuses(), 10, "attempt 1 to run")
            if when == "handing_back":  # the cancel reaches the dispatch as this try ends otherwise
                await activity.client().get_workflow_handle(task.job_id).cancel()
                await _until_cancel_requested(activity.client(), activity.info().workflow_id)
            fakes.claims[1].released = True
            raise ApplicationError("agent shut down; job handed back", type=ERR_AGENT_UNAVAILABLE)
        started.set()
        if when == "handing_back":
            raise ApplicationError("a cancelled dispatch started another try", type=ERR_TRAINING_FAILED,
                                   non_retryable=True)
        try:
            activity.heartbeat()
            await asyncio.sleep(0)  # the cancel may land here, before the claim
            await claim(fakes, task, agent="agent-b")
            claimed.set()
            while True:
                activity.heartbeat()
                await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    fakes = Fakes(train)
    if continue_as_new:
        fakes.max_history_events = 1  # the dispatch continues as new before every try

    async def cancel_during_hand_over(handle: WorkflowHandle) -> None:
        if when == "handing_back":
            return
        await asyncio.wait_for(started.wait(), 20)
        if when == "after_claim":
            await asyncio.wait_for(claimed.wait(), 10)
        elif when == "when_running":
            await wait_until(lambda: fakes.statuses().count("running") >= 2, 10, "attempt 2 to run")
        await handle.cancel()

    result, history = await run_job(wf_env, fakes, after_start=cancel_during_hand_over, heartbeat_timeout=5.0)
    assert isinstance(result, WorkflowFailureError) and isinstance(result.cause, CancelledError), result
    assert cancelled.is_set() != (when == "handing_back") and started.is_set() != (when == "handing_back")
    dispatch = await wf_env.pyd_client.get_workflow_handle(dispatch_workflow_id(history.workflow_id, 1)).fetch_history()
    record_history(dispatch, prefix="dispatch-")
    await Replayer(workflows=[GpuDispatchWorkflow], data_converter=pydantic_data_converter).replay_workflow(dispatch)
    assert fakes.statuses()[-1] == "cancelled", [(t.status, t.attempt, t.agent_name) for t in fakes.transitions]
    assert len(fakes.settled) == 1  # the open dispatch was closed


async def _until_cancel_requested(client, workflow_id: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
            if event.HasField("workflow_execution_cancel_requested_event_attributes"):
                return
        assert asyncio.get_running_loop().time() < deadline, f"{workflow_id} was not asked to cancel"
        await asyncio.sleep(0.05)


async def test_forged_agent_started_changes_nothing(wf_env):
    """An agent_started signal nobody claimed (anyone can send one) is checked and ignored."""
    forged = asyncio.Event()

    async def train(fakes: Fakes, task: TrainingTask) -> TrainingOutcome:
        await activity.client().get_workflow_handle(task.job_id).signal(
            AGENT_STARTED_SIGNAL, AgentStarted(agent_id="w_mallory", agent_name="mallory", attempt=task.attempt))
        await wait_until(lambda: bool(fakes.unconfirmed), 10, "the forged claim to be checked")
        forged.set()
        return await finishes(fakes, task)

    fakes = Fakes(train)
    result, _ = await run_job(wf_env, fakes)
    assert forged.is_set() and result.status == "completed" and result.agent_name == "agent-1"
    assert [t.agent_name for t in fakes.transitions if t.status == "running"] == ["agent-1"]


async def test_an_end_no_agent_reported_is_not_a_completion(wf_env):
    """The GPU plane reports a finished attempt, but no agent claimed it or reported an exit: the
    dispatch settles as lost and the job does not complete on the GPU plane's word."""
    async def train(fakes: Fakes, task: TrainingTask) -> TrainingOutcome:
        return TrainingOutcome(exit_code=0, agent_id="w_mallory", agent_name="mallory")

    fakes = Fakes(train, max_attempts=1)
    result, _ = await run_job(wf_env, fakes)
    assert result.status == "failed" and "gave up after 1 lost attempts" in result.error
    assert "running" not in fakes.statuses()


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_recorded_histories_replay(path):
    """Histories recorded from earlier versions must still replay (guard changes with workflow.patched)."""
    from temporalio.client import WorkflowHistory

    history = WorkflowHistory.from_json(path.stem, path.read_text())
    workflow = GpuDispatchWorkflow if path.name.startswith("dispatch-") else TrainingJobWorkflow
    await Replayer(workflows=[workflow], data_converter=pydantic_data_converter).replay_workflow(history)
