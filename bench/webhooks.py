"""Benchmark (run by hand, prints numbers): a Replicate webhook's receipt -> the job's new status
visible in ``GET /api/cloud/jobs/{id}``.

N jobs on the Replicate stand-in (``tests/servers/replicate_server.py``), each waiting in ``starting``;
for each, the stand-in moves the training to ``processing`` and sends its signed webhook, and the time
from the API's receipt of that webhook (the moment the stand-in sends it, on loopback) to the first
``GET`` that shows the job ``running`` is taken. The path: signature check, the delivery recorded, the
training row updated, a signal to the job's workflow, which reads the row (an activity) and records the
transition.

In the same run, the raw floor: a delivery the API has already applied (the same ``webhook-id`` sent
again: verified, acknowledged, nothing applied) followed by one ``GET`` of the job: two HTTP round trips
with the same checks and no workflow.

Target: p95 <= 200 ms.
Usage: .venv/bin/python bench/webhooks.py [--jobs 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import yaml  # noqa: E402

from tests.e2e.stack import Stack  # noqa: E402
from tests.e2e.temporal_server import TemporalDevServer  # noqa: E402
from tests.servers.replicate_server import ReplicateServer  # noqa: E402

VERSION = "acme/trainer:" + "b" * 64
POLL = 0.002


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(POLL)
    raise RuntimeError(f"timed out waiting for {what}")


def status(client: httpx.Client, job_id: str) -> dict:
    return client.get(f"/api/cloud/jobs/{job_id}").json()


def start_jobs(stack: Stack, replicate: ReplicateServer, count: int) -> list[tuple[str, str]]:
    out = []
    for _ in range(count):
        job_id = stack.expect(stack.client.post("/api/cloud/replicate/submit", json={"config_name": "bench"}),
                              201)["job_id"]
        training = wait(lambda: (status(stack.client, job_id).get("provider_training") or {}).get("training_id"),
                        30, f"job {job_id}'s training")
        wait(lambda: status(stack.client, job_id)["status"] == "queued", 30, f"job {job_id} queued")
        out.append((job_id, training))
    replicate.wait_deliveries_settled(30)
    return out


def receipt_to_visible(stack: Stack, replicate: ReplicateServer, jobs: list[tuple[str, str]]) -> list[float]:
    out = []
    for job_id, training in jobs:
        started = time.perf_counter()
        replicate.advance(training, "processing", logs="step 1\n")  # the webhook goes out at once
        wait(lambda: status(stack.client, job_id)["status"] == "running", 30, f"job {job_id} running")
        out.append((time.perf_counter() - started) * 1000)
    return out


def floor(stack: Stack, replicate: ReplicateServer, jobs: list[tuple[str, str]]) -> list[float]:
    out = []
    for job_id, training in jobs:
        before = len(replicate.deliveries(training))
        started = time.perf_counter()
        replicate.redeliver(training)  # the same webhook-id: verified and acknowledged, not applied again
        replicate.wait_for(lambda: len(replicate.deliveries(training)) > before and
                           replicate.deliveries(training)[-1]["state"] != "pending", 10, POLL)
        status(stack.client, job_id)
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="st-bench-") as tmp, TemporalDevServer(Path(tmp) / "temporal") as temporal, \
            ReplicateServer() as replicate:
        stack = Stack(temporal, Path(tmp) / "webhooks", extra_env={
            "SIMPLETUNER_REPLICATE_API_TOKEN": replicate.token, "REPLICATE_BASE_URL": replicate.url,
            "SIMPLETUNER_LOG_LEVEL": "WARNING"})
        stack.enterprise_config.write_text(yaml.safe_dump({"cost": {"hourly_rates_usd": {"cpu": 1.0}}}))
        stack.start()
        try:
            stack.expect(stack.client.put("/api/configs/bench", json=stack.tiny_config()), 200, 201)
            stack.expect(stack.client.put("/api/cloud/providers/replicate/config", json={
                "version": VERSION, "destination": "acme/bench-out", "webhook_url": f"{stack.api_url}/api/webhooks/replicate"}), 200)
            receipt_to_visible(stack, replicate, start_jobs(stack, replicate, 3))  # warm-up
            jobs = start_jobs(stack, replicate, args.jobs)
            visible = receipt_to_visible(stack, replicate, jobs)
            raw = floor(stack, replicate, jobs)
        except Exception:
            print(stack.logs_tail(60), file=sys.stderr)
            raise
        finally:
            stack.stop_all()
    print(f"webhook receipt -> job status visible (GET), {args.jobs} jobs:")
    print(f"  p50 {statistics.median(visible):7.1f} ms   p95 {pct(visible, 0.95):7.1f} ms   (target p95 <= 200 ms)")
    print("raw floor, same run: an already-applied delivery acknowledged + one GET of the job:")
    print(f"  p50 {statistics.median(raw):7.1f} ms   p95 {pct(raw, 0.95):7.1f} ms")
    print(f"  ratio p95: {pct(visible, 0.95) / pct(raw, 0.95):.1f}x")


if __name__ == "__main__":
    main()
