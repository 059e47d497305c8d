"""Benchmark (run by hand, prints numbers): dispatch latency through the GPU plane, and failover.

1. N sequential jobs on one idle local agent: submit (HTTP request sent) -> training process start
   (the process writes its start time), p50/p95. The path crosses into the GPU namespace through
   the Nexus endpoint (dispatch workflow, claim over REST, the group guard).
2. In the same run, the raw Temporal floor: a bare workflow start + one activity dispatched to an
   already-polling worker in this process, p50/p95, and the ratio of the two.
3. In the same run, the same with the bridge: a workflow in the control namespace calls the real
   Nexus endpoint, whose handler starts a workflow in the GPU namespace that dispatches the
   activity; the difference is the bridge's added latency.
4. Failover: two agents in one pool, heartbeat timeout 10 s, SIGKILL the busy one; time from the
   kill to the training process of attempt 2 starting.

Targets: p95 <= 250 ms and <= 2.5x the raw floor; failover <= 12 s.
Usage: .venv/bin/python bench/dispatch.py [--jobs 30]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nexusrpc  # noqa: E402
from temporalio import activity, nexus, workflow  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.worker import UnsandboxedWorkflowRunner, Worker  # noqa: E402

from activities.temporal.planes import ensure_nexus_endpoint  # noqa: E402

from tests.e2e.stack import Stack  # noqa: E402
from tests.e2e.temporal_server import TemporalDevServer  # noqa: E402

STAMP_COMMAND = ["/bin/sh", "-c", 'date +%s.%N > "$SIMPLETUNER_OUTPUT_DIR/started"']
LONG_COMMAND = ["/bin/sh", "-c", 'date +%s.%N > "$SIMPLETUNER_JOB_DIR/../started-$SIMPLETUNER_ATTEMPT"; exec sleep 600']


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def started_at(stack: Stack, job_id: str, name: str, timeout: float = 30.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in stack.agents_dir.glob(f"*/{job_id}/**/{name}"):
            text = path.read_text().strip()
            if text:
                return float(text)
        time.sleep(0.005)
    raise RuntimeError(f"job {job_id} never started ({name})")


def dispatch_latency(stack: Stack, n: int) -> list[float]:
    stack.client.put("/api/configs/bench-stamp", json={"command": STAMP_COMMAND, "gpu_count": 1}).raise_for_status()
    latencies = []
    for _ in range(n):
        sent = time.time()
        job_id = stack.submit(config_name="bench-stamp", target="local")["job_id"]
        latencies.append((started_at(stack, job_id, "started") - sent) * 1000)
        stack.wait_job(job_id, "completed", timeout=30)
    return latencies


@activity.defn(name="bench_floor")
async def floor_activity(_: str) -> float:
    return time.time()


@workflow.defn(name="BenchFloor")
class FloorWorkflow:
    @workflow.run
    async def run(self, queue: str) -> float:
        return await workflow.execute_activity("bench_floor", queue, task_queue=queue,
                                               start_to_close_timeout=timedelta(seconds=10))


@nexusrpc.service
class BenchBridge:
    dispatch: nexusrpc.Operation[str, float]


@workflow.defn(name="BenchBridgeTarget")
class BridgeTargetWorkflow:
    @workflow.run
    async def run(self, queue: str) -> float:
        return await workflow.execute_activity("bench_floor", queue, task_queue=queue,
                                               start_to_close_timeout=timedelta(seconds=10))


@nexusrpc.handler.service_handler(service=BenchBridge)
class BenchBridgeHandler:
    @nexus.workflow_run_operation
    async def dispatch(self, ctx: nexus.WorkflowRunOperationContext, queue: str) -> nexus.WorkflowHandle[float]:
        return await ctx.start_workflow(BridgeTargetWorkflow.run, queue, id=f"bridge-{uuid.uuid4().hex}",
                                        request_eager_start=getattr(BenchBridgeHandler, "eager", True))


@workflow.defn(name="BenchBridgeCaller")
class BridgeCallerWorkflow:
    @workflow.run
    async def run(self, endpoint: str) -> float:
        client = workflow.create_nexus_client(service=BenchBridge, endpoint=endpoint)
        return await client.execute_operation(BenchBridge.dispatch, endpoint + "-activities")


async def bridge_floor(address: str, control: str, gpu: str, n: int) -> list[float]:
    """Workflow start in the control namespace -> Nexus -> workflow in the GPU namespace -> activity."""
    client = await Client.connect(address, namespace=control)
    gpu_client = await Client.connect(address, namespace=gpu)
    endpoint = f"bench-bridge-{uuid.uuid4().hex[:8]}"
    handler_queue = f"bench-handler-{uuid.uuid4().hex[:8]}"
    await ensure_nexus_endpoint(client, endpoint, gpu, handler_queue)
    latencies = []
    async with Worker(client, task_queue=endpoint, workflows=[BridgeCallerWorkflow],
                      workflow_runner=UnsandboxedWorkflowRunner()), \
            Worker(gpu_client, task_queue=handler_queue, workflows=[BridgeTargetWorkflow],
                   nexus_service_handlers=[BenchBridgeHandler()], workflow_runner=UnsandboxedWorkflowRunner()), \
            Worker(gpu_client, task_queue=endpoint + "-activities", activities=[floor_activity]):
        for _ in range(n + 3):
            sent = time.time()
            started = await client.execute_workflow(BridgeCallerWorkflow.run, endpoint,
                                                    id=f"bridge-caller-{uuid.uuid4().hex}", task_queue=endpoint)
            latencies.append((started - sent) * 1000)
    return latencies[3:]


async def temporal_floor(address: str, namespace: str, n: int) -> list[float]:
    client = await Client.connect(address, namespace=namespace)
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    latencies = []
    async with Worker(client, task_queue=queue, workflows=[FloorWorkflow], activities=[floor_activity],
                      workflow_runner=UnsandboxedWorkflowRunner()):  # this module imports the harness
        for _ in range(n):
            sent = time.time()
            started = await client.execute_workflow(FloorWorkflow.run, queue, id=f"floor-{uuid.uuid4().hex}",
                                                    task_queue=queue)
            latencies.append((started - sent) * 1000)
    return latencies


def failover(temporal: TemporalDevServer, root: Path) -> float:
    stack = Stack(temporal, root / "failover", heartbeat_timeout=10.0).start()
    try:
        tokens = [stack.create_worker(f"pool-{i}", {"pool": "bench"})[1] for i in range(2)]
        for i, token in enumerate(tokens):
            stack.start_agent(token, name=f"pool-{i}")
        stack.client.put("/api/configs/bench-long", json={"command": LONG_COMMAND, "gpu_count": 1}).raise_for_status()
        job_id = stack.submit(config_name="bench-long", target="worker", worker_labels={"pool": "bench"})["job_id"]
        job, _ = stack.wait_running(job_id)
        started_at(stack, job_id, "started-1")
        stack.agent_proc(job["agent_id"]).kill()
        killed = time.time()
        return started_at(stack, job_id, "started-2", timeout=60) - killed
    finally:
        stack.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="st-bench-") as tmp, TemporalDevServer(Path(tmp) / "temporal") as temporal:
        root = Path(tmp)
        stack = Stack(temporal, root / "dispatch", heartbeat_timeout=30.0).start()
        try:
            _, token = stack.create_worker("bench-local", {"host": "local"}, local=True)
            stack.start_agent(token, name="bench-local")
            dispatch_latency(stack, 3)  # warm-up
            jobs = dispatch_latency(stack, args.jobs)
            floor = asyncio.run(temporal_floor(temporal.address, stack.namespace, args.jobs))
            bridged = asyncio.run(bridge_floor(temporal.address, stack.namespace, stack.gpu_namespace, args.jobs))
        finally:
            stack.stop_all()
        print(f"submit -> training process start, {args.jobs} sequential jobs on an idle local agent:")
        print(f"  p50 {statistics.median(jobs):7.1f} ms   p95 {pct(jobs, 0.95):7.1f} ms   (target p95 <= 250 ms)")
        print("raw Temporal floor (workflow start + activity dispatch to a polling worker):")
        print(f"  p50 {statistics.median(floor):7.1f} ms   p95 {pct(floor, 0.95):7.1f} ms")
        print("the same across the bridge (control workflow -> Nexus -> GPU-namespace workflow -> activity):")
        print(f"  p50 {statistics.median(bridged):7.1f} ms   p95 {pct(bridged, 0.95):7.1f} ms")
        print(f"the bridge adds: p50 {statistics.median(bridged) - statistics.median(floor):+.1f} ms   "
              f"p95 {pct(bridged, 0.95) - pct(floor, 0.95):+.1f} ms")
        print(f"ratio p95/p95 to the raw floor: {pct(jobs, 0.95) / pct(floor, 0.95):.2f}x   (target <= 2.5x; "
              f"the bare bridge alone is {pct(bridged, 0.95) / pct(floor, 0.95):.2f}x)")
        seconds = failover(temporal, root)
        print(f"failover after SIGKILL with a 10 s heartbeat timeout: {seconds:.2f} s   (target <= 12 s)")


if __name__ == "__main__":
    main()
