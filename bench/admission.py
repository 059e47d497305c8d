"""Benchmark (run by hand, prints numbers): admission latency and submission throughput.

1. Admission after a slot frees: max_concurrent=1; job A holds the slot until the bench lets it
   finish, job B waits. Time from A giving its slot back (``released_at``) to B's training process
   start, p50/p95 over N pairs (admission + signal + placement + dispatch).
2. Sustained submissions: M jobs through ``POST /api/queue/submit`` from 16 threads (jobs wait in
   the queue behind max_concurrent=1), against raw Temporal workflow starts with the same
   concurrency in the same run; submissions/s and the ratio.

Targets: admission p95 <= 300 ms; submit throughput >= 0.5x raw starts.
Usage: .venv/bin/python bench/admission.py [--pairs 15] [--submits 200]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio import workflow  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.worker import UnsandboxedWorkflowRunner, Worker  # noqa: E402

from bench.dispatch import pct, started_at  # noqa: E402
from tests.e2e.stack import Stack  # noqa: E402
from tests.e2e.temporal_server import TemporalDevServer  # noqa: E402

# A waits for a file the bench creates, then exits; B stamps its start time.
HOLD = ["/bin/sh", "-c", 'while [ ! -e "$SIMPLETUNER_JOB_DIR/../go" ]; do sleep 0.01; done']
STAMP = ["/bin/sh", "-c", 'date +%s.%N > "$SIMPLETUNER_OUTPUT_DIR/started"']


def released_at(stack: Stack, job_id: str, timeout: float = 30.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(stack.data_dir / "simpletuner.db") as db:
            row = db.execute("SELECT released_at FROM admission WHERE job_id = ?", (job_id,)).fetchone()
        if row and row[0]:
            return datetime.fromisoformat(row[0]).replace(tzinfo=timezone.utc).timestamp()
        time.sleep(0.005)
    raise RuntimeError(f"job {job_id} never released its slot")


def admission_latency(stack: Stack, pairs: int) -> list[float]:
    latencies = []
    for _ in range(pairs):
        a = stack.submit(config_name="bench-hold", target="local")["job_id"]
        stack.wait_job(a, "running", timeout=30)
        b = stack.submit(config_name="bench-stamp", target="local")["job_id"]
        stack.wait_job(b, "queued", timeout=30)
        for job_dir in stack.agents_dir.glob(f"*/{a}"):
            (job_dir / "go").touch()
        latencies.append((started_at(stack, b, "started") - released_at(stack, a)) * 1000)
        stack.wait_job(b, "completed", timeout=30)
    return latencies


def submit_rate(stack: Stack, n: int) -> float:
    body = {"config_name": "bench-stamp", "target": "local"}
    with ThreadPoolExecutor(max_workers=16) as pool:
        t0 = time.monotonic()
        codes = list(pool.map(lambda _: stack.client.post("/api/queue/submit", json=body).status_code, range(n)))
        elapsed = time.monotonic() - t0
    assert all(code == 201 for code in codes), codes[:5]
    return n / elapsed


@workflow.defn(name="BenchNoop")
class NoopWorkflow:
    @workflow.run
    async def run(self) -> None:
        return None


async def raw_start_rate(address: str, namespace: str, n: int, concurrency: int = 16) -> float:
    client = await Client.connect(address, namespace=namespace)
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await client.start_workflow(NoopWorkflow.run, id=f"noop-{uuid.uuid4().hex}", task_queue=queue)

    async with Worker(client, task_queue=queue, workflows=[NoopWorkflow], workflow_runner=UnsandboxedWorkflowRunner()):
        t0 = time.monotonic()
        await asyncio.gather(*(one() for _ in range(n)))
        return n / (time.monotonic() - t0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=15)
    parser.add_argument("--submits", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="st-bench-") as tmp, TemporalDevServer(Path(tmp) / "temporal") as temporal:
        stack = Stack(temporal, Path(tmp) / "admission", heartbeat_timeout=30.0).start()
        try:
            _, token = stack.create_worker("bench-local", {"host": "local"}, local=True)
            stack.start_agent(token, name="bench-local")
            for name, command in (("bench-hold", HOLD), ("bench-stamp", STAMP)):
                stack.client.put(f"/api/configs/{name}", json={"command": command, "gpu_count": 1}).raise_for_status()
            stack.client.post("/api/queue/concurrency", json={"max_concurrent": 1}).raise_for_status()
            admission_latency(stack, 2)  # warm-up
            latency = admission_latency(stack, args.pairs)
            ours = submit_rate(stack, args.submits)
            raw = asyncio.run(raw_start_rate(temporal.address, stack.namespace, args.submits))
        finally:
            stack.stop_all()
    print(f"slot freed -> next job's training process start, {args.pairs} pairs, max_concurrent=1:")
    print(f"  p50 {statistics.median(latency):7.1f} ms   p95 {pct(latency, 0.95):7.1f} ms   (target p95 <= 300 ms)")
    print(f"sustained submissions, {args.submits} from 16 threads: {ours:6.1f}/s via POST /api/queue/submit, "
          f"{raw:6.1f}/s raw workflow starts; ratio {ours / raw:.2f}x (target >= 0.5x)")


if __name__ == "__main__":
    main()
