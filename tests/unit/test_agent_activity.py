"""The whole agent against a real Temporal dev server and an in-process fake of the REST API.

A tiny workflow dispatches ``run_training`` to the agent's task queue the way the GPU plane's
dispatch workflow does (a job id and an attempt only); the agent learns what to run from the fake
API's answer to its claim; the fake records what the agent reports and can refuse, drain or reject.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from temporalio import workflow
from temporalio.client import WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from gpu_agent.agent import Agent, AgentConfig
from gpu_agent.orchestrator import OrchestratorClient
from tests.helpers import group_gone, wait_until
from workflows.contracts import ERR_AGENT_UNAVAILABLE, ERR_DISPATCH_CLOSED, ERR_TRAINING_FAILED, \
    RUN_TRAINING_ACTIVITY, TrainingConfigSpec, TrainingOutcome

TRAIN_TINY = str(Path(__file__).resolve().parents[2] / "examples" / "train_tiny.py")
HARDWARE = {"gpu_count": 1, "gpu_name": "CPU", "gpu_vram_gb": None, "accelerator_type": "cpu"}
SLEEPER = ["{python}", "-c", "import os, time\nprint('pgid', os.getpgrp(), flush=True)\n"
           "for i in range(1200):\n    print('tick', i, flush=True)\n    time.sleep(0.1)"]


@workflow.defn(name="AgentTestWorkflow")
class AgentTestWorkflow:
    @workflow.run
    async def run(self, task_queue: str, task: dict) -> TrainingOutcome:
        return await workflow.execute_activity(
            RUN_TRAINING_ACTIVITY, task, task_queue=task_queue, result_type=TrainingOutcome,
            start_to_close_timeout=timedelta(minutes=2), heartbeat_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(maximum_attempts=1),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED)



class FakeAPI:
    """Just enough of the control plane's agent endpoints, with knobs to misbehave."""

    def __init__(self, temporal_address: str, task_queue: str):
        self.temporal_address, self.task_queue = temporal_address, task_queue
        self.token_ok, self.draining = True, False
        self.claim_code = 200
        self.progress_code = 200
        self.configs: dict[str, TrainingConfigSpec] = {}  # what the control plane dispatched, per job
        self.claims: list[dict] = []
        self.calls: list[tuple[str, str]] = []
        self.statuses: list[dict] = []
        self.heartbeats: list[dict] = []
        self.lines: dict[int, str] = {}
        self.uploads: dict[str, bytes] = {}
        self.disconnects: list[dict] = []

    def client(self) -> OrchestratorClient:
        return OrchestratorClient("http://fake-api", "token", transport=httpx.MockTransport(self.handle))

    def log_lines(self) -> list[str]:
        assert sorted(self.lines) == list(range(len(self.lines))), "log offsets have gaps"
        return [self.lines[i] for i in range(len(self.lines))]

    async def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.calls.append((request.method, path))
        assert request.headers["X-Worker-Token"] == "token"
        if not self.token_ok:
            return httpx.Response(401, json={"detail": "invalid token"})
        if path == "/api/workers/register":
            return httpx.Response(200, json={
                "worker_id": "w-1", "name": "agent-1", "labels": {}, "worker_type": "persistent", "local": False,
                "status": "idle", "draining": self.draining, "task_queue": self.task_queue,
                "heartbeat_interval_seconds": 1, "heartbeat_timeout_seconds": 30,
                "temporal": {"address": self.temporal_address, "namespace": "default", "tls": False}})
        if path == "/api/workers/heartbeat":
            self.heartbeats.append(json.loads(request.content))
            return httpx.Response(200, json={"status": "online", "draining": self.draining,
                                             "heartbeat_interval_seconds": 1})
        if path.endswith("/claim"):
            job_id = path.split("/")[-2]
            self.claims.append({"job_id": job_id, **json.loads(request.content)})
            if self.claim_code != 200:
                return httpx.Response(self.claim_code, json={"detail": "job is not yours"})
            return httpx.Response(200, json={"job_id": job_id, "attempt": self.claims[-1]["attempt"],
                                             "config": self.configs[job_id].model_dump()})
        if path.endswith("/status"):
            body = json.loads(request.content)
            self.statuses.append(body)
            if self.progress_code != 200:
                return httpx.Response(self.progress_code, json={"detail": "job is not yours"})
            for i, line in enumerate(body["logs"]):
                self.lines[body["log_offset"] + i] = line
            return httpx.Response(200, json={"accepted": True})
        if "/outputs/" in path:
            assert request.url.params["attempt"] == "1"
            data = await request.aread()
            name = path.split("/outputs/", 1)[1]
            sha = hashlib.sha256(data).hexdigest()
            if sha != request.headers["X-Content-SHA256"]:
                return httpx.Response(400, json={"detail": "checksum mismatch"})
            self.uploads[name] = data
            return httpx.Response(201, json={"name": name, "size": len(data), "sha256": sha})
        if path == "/api/workers/disconnect":
            self.disconnects.append(json.loads(request.content))
            return httpx.Response(200, json={"ok": True})
        return httpx.Response(404, json={"detail": "not found"})


@pytest.fixture(scope="module")
async def env():
    temporal = str(Path(sys.executable).parent / "temporal")
    async with await WorkflowEnvironment.start_local(dev_server_existing_path=temporal,
                                                     data_converter=pydantic_data_converter) as env:
        async with Worker(env.client, task_queue="agent-tests-wf", workflows=[AgentTestWorkflow],
                          workflow_runner=UnsandboxedWorkflowRunner()):
            yield env


class Harness:
    def __init__(self, env: WorkflowEnvironment, tmp_path: Path, persistent: bool, grace: float):
        self.env, self.tmp_path = env, tmp_path
        self.api = FakeAPI(env.client.service_client.config.target_host, f"gpu-test-{uuid.uuid4().hex[:8]}")
        config = AgentConfig(orchestrator_url="http://fake-api", worker_token="token", name="agent-1",
                             work_dir=tmp_path, persistent=persistent, shutdown_grace=grace)
        self.agent = Agent(config, orchestrator=self.api.client(), hardware=dict(HARDWARE),
                           handle_signals=False)
        self.task = asyncio.create_task(self.agent.run())

    async def polling(self):
        await wait_until(lambda: ("POST", "/api/workers/register") in self.api.calls, what="registration")

    async def start_job(self, command: list[str], args: dict | None = None, job_id: str | None = None,
                        extra: dict | None = None):
        """Dispatch as the control plane does: the config is recorded with the API, the task names the
        job and the attempt only (``extra``: what a forged task would add; it must be ignored)."""
        job_id = job_id or f"job-{uuid.uuid4().hex[:8]}"
        self.api.configs[job_id] = TrainingConfigSpec(name="t", command=command, args=args or {})
        task = {"job_id": job_id, "attempt": 1, **(extra or {})}
        handle = await self.env.client.start_workflow(AgentTestWorkflow.run, args=[self.api.task_queue, task],
                                                      id=job_id, task_queue="agent-tests-wf")
        return handle, job_id

    async def pgid(self) -> int:
        """The training's process group (the guard leads it; the training prints it)."""
        await wait_until(lambda: any(line.startswith("pgid ") for line in self.api.lines.values()),
                         what="pgid line")
        return int(next(line for line in self.api.lines.values() if line.startswith("pgid ")).split()[1])

    async def finish(self, timeout: float = 15.0) -> int:
        return await asyncio.wait_for(self.task, timeout)


def app_error(exc: WorkflowFailureError) -> ApplicationError:
    assert isinstance(exc.cause, ActivityError)
    assert isinstance(exc.cause.cause, ApplicationError), exc.cause.cause
    return exc.cause.cause


async def test_ephemeral_agent_runs_one_job_reports_uploads_and_exits(env, tmp_path):
    h = Harness(env, tmp_path, persistent=False, grace=5)
    handle, job_id = await h.start_job(["{python}", TRAIN_TINY], {"steps": 40, "checkpoint_every": 20})
    outcome = await handle.result()
    assert await h.finish() == 0
    assert outcome.exit_code == 0 and outcome.agent_id == "w-1" and outcome.agent_name == "agent-1"
    assert sorted(o.name for o in outcome.outputs) == ["checkpoints/step-00020.npz", "checkpoints/step-00040.npz",
                                                       "metrics.json", "model.npz"]
    out_dir = tmp_path / job_id / "attempt-1" / "output"
    for output in outcome.outputs:
        data = (out_dir / output.name).read_bytes()
        assert h.api.uploads[output.name] == data
        assert output.sha256 == hashlib.sha256(data).hexdigest() and output.size == len(data)
    assert h.api.claims == [{"job_id": job_id, "attempt": 1}]
    train_log = (out_dir.parent / "train.log").read_text().splitlines()
    assert h.api.log_lines() == train_log
    assert [s for s in h.api.statuses if s["progress"]][-1]["progress"]["step"] == 40
    assert h.api.statuses[-1]["status"] == "exited" and h.api.statuses[-1]["exit_code"] == 0
    assert h.api.disconnects and h.api.calls[-1] == ("POST", "/api/workers/disconnect")


async def test_non_zero_exit_is_a_non_retryable_training_failure(env, tmp_path):
    h = Harness(env, tmp_path, persistent=True, grace=5)
    handle, _ = await h.start_job(["{python}", TRAIN_TINY], {"steps": 50, "fail_at_step": 3})
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    err = app_error(info.value)
    assert err.type == ERR_TRAINING_FAILED and err.non_retryable
    assert err.message == "training process exited with code 3"
    assert "simulated failure at step 3" in err.details[0]
    assert (h.api.statuses[-1]["status"], h.api.statuses[-1]["exit_code"]) == ("exited", 3)
    handle, _ = await h.start_job([])  # persistent: still serving; an empty command fails clearly
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    err = app_error(info.value)
    assert err.type == ERR_TRAINING_FAILED and err.non_retryable and "empty command" in err.message
    h.agent.request_stop()
    assert await h.finish() == 0


async def test_cancellation_kills_the_process_group(env, tmp_path):
    h = Harness(env, tmp_path, persistent=False, grace=5)
    handle, _ = await h.start_job(SLEEPER)
    pgid = await h.pgid()
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    assert isinstance(info.value.cause, CancelledError) or isinstance(info.value.cause.cause, CancelledError)
    assert group_gone(pgid)
    assert await h.finish() == 0


async def test_refused_claim_hands_the_task_back(env, tmp_path):
    h = Harness(env, tmp_path, persistent=False, grace=5)
    h.api.claim_code = 409
    handle, job_id = await h.start_job(SLEEPER)
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    err = app_error(info.value)
    assert err.type == ERR_AGENT_UNAVAILABLE and not err.non_retryable
    assert not (tmp_path / job_id).exists()  # nothing was started
    await wait_until(lambda: not h.agent.state.busy, what="the task to be released")
    assert not h.agent.state.done_with_work  # a refused task is not this ephemeral agent's one job
    h.agent.request_stop()
    assert await h.finish() == 0


async def test_a_forged_task_runs_only_what_the_claim_answers(env, tmp_path):
    """A task that carries a command of its own (anyone on the GPU namespace can schedule one) runs what
    the API's answer to the claim says, or nothing when the claim is refused."""
    h = Harness(env, tmp_path, persistent=True, grace=5)
    marker = tmp_path / "pwned"
    forged = {"config": {"name": "x", "command": ["/bin/sh", "-c", f"touch {marker}"]}, "owner_name": "mallory"}
    handle, _ = await h.start_job(["{python}", "-c", "print('the dispatched config ran')"], extra=forged)
    assert (await handle.result()).exit_code == 0
    assert "the dispatched config ran" in h.api.log_lines() and not marker.exists()
    h.api.claim_code = 403  # dispatched to another pool
    handle, job_id = await h.start_job(["{python}", "-c", "print('no')"], extra=forged)
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    assert app_error(info.value).type == ERR_AGENT_UNAVAILABLE
    assert not marker.exists() and not (tmp_path / job_id).exists()
    h.api.claim_code = 410  # the job no longer needs this attempt: the dispatch ends
    handle, _ = await h.start_job(["{python}", "-c", "print('no')"])
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    err = app_error(info.value)
    assert err.type == ERR_DISPATCH_CLOSED and err.non_retryable
    h.agent.request_stop()
    assert await h.finish() == 0


async def test_losing_the_job_kills_the_process(env, tmp_path):
    h = Harness(env, tmp_path, persistent=True, grace=5)
    handle, _ = await h.start_job(SLEEPER)
    pgid = await h.pgid()
    h.api.progress_code = 409
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    err = app_error(info.value)  # the SDK wraps an unrequested asyncio.CancelledError
    assert err.type == "CancelledError" and "job lost: job is not yours" in err.message
    assert group_gone(pgid)
    h.agent.request_stop()
    assert await h.finish() == 0


async def test_shutdown_past_the_grace_period_hands_the_job_back(env, tmp_path):
    h = Harness(env, tmp_path, persistent=True, grace=0.5)
    handle, _ = await h.start_job(SLEEPER)
    pgid = await h.pgid()
    h.agent.request_stop()  # what SIGTERM does
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    err = app_error(info.value)
    assert err.type == ERR_AGENT_UNAVAILABLE
    assert group_gone(pgid)
    assert h.api.statuses[-1]["status"] == "released"  # handed back: not counted as a lost agent
    assert await h.finish() == 0
    assert h.api.disconnects == [{"reason": "shutdown"}]


async def test_draining_lets_the_job_finish_then_stops_polling(env, tmp_path):
    h = Harness(env, tmp_path, persistent=True, grace=5)
    handle, _ = await h.start_job(["{python}", TRAIN_TINY], {"steps": 30, "step_delay_seconds": 0.1})
    await wait_until(lambda: any(hb["state"] == "busy" for hb in h.api.heartbeats), what="a busy heartbeat")
    h.api.draining = True
    outcome = await handle.result()  # the running job is not interrupted
    assert outcome.exit_code == 0
    await wait_until(lambda: h.api.heartbeats[-1] == {"state": "draining", "current_job_id": None},
                     what="an idle draining heartbeat")
    assert not h.task.done()  # persistent agents stay, heartbeating as draining
    h.agent.request_stop()
    assert await h.finish() == 0


async def test_ephemeral_agent_told_to_drain_exits(env, tmp_path):
    h = Harness(env, tmp_path, persistent=False, grace=5)
    h.api.draining = True
    assert await h.finish() == 0
    assert h.api.disconnects == [{"reason": "drained"}]


async def test_rejected_token_on_heartbeat_stops_with_code_2(env, tmp_path):
    h = Harness(env, tmp_path, persistent=True, grace=5)
    await h.polling()
    h.api.token_ok = False
    assert await h.finish() == 2
    assert h.agent.exit_message == "invalid worker token (rotated or mistyped?)"
