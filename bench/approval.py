"""Benchmark (run by hand, prints numbers): approval latencies on the real stack.

1. REST approve -> training process start: N jobs wait for approval; a lead approves each one
   (HTTP request sent) and the training process writes its start time; p50/p95.
2. E-mail reply -> job admitted: an approver's "LGTM" reply is delivered into the watched mailbox
   (Dovecot LDA) and the job's ``job.queued`` event is written; p50/p95. Dovecot itself holds IDLE
   notifications for ~0.5 s (NOTIFY_DELAY_MSECS), which is part of the number.

Targets: REST p95 <= 500 ms; e-mail p95 <= 3 s.
Needs Dovecot (``bash tests/servers/install.sh``).
Usage: .venv/bin/python bench/approval.py [--jobs 20]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import yaml  # noqa: E402

from bench.dispatch import STAMP_COMMAND, pct, started_at  # noqa: E402
from tests.e2e.stack import Stack  # noqa: E402
from tests.e2e.temporal_server import TemporalDevServer  # noqa: E402
from tests.e2e.test_approvals import BOT, MAIL_USERS, approval_mail, reply  # noqa: E402
from tests.servers.mail_server import DovecotServer, SmtpSink  # noqa: E402


def user_client(stack: Stack, name: str, level: str) -> httpx.Client:
    password = "Bench-Passw0rd-long"
    stack.expect(stack.client.post("/api/users", json={"username": name, "email": f"{name}@corp.test",
                                                       "password": password, "level_names": [level]}), 201)
    with httpx.Client(base_url=stack.api_url, trust_env=False) as browser:
        login = browser.post("/api/auth/login", json={"username": name, "password": password, "mode": "bearer"})
        login.raise_for_status()
        token = login.json()["access_token"]
    return httpx.Client(base_url=stack.api_url, trust_env=False, timeout=15,
                        headers={"Authorization": f"Bearer {token}"})


def set_up(stack: Stack) -> tuple[httpx.Client, httpx.Client]:
    _, token = stack.create_worker("bench-local", {"host": "local"}, local=True)
    stack.start_agent(token, name="bench-local")
    stack.expect(stack.client.put("/api/configs/bench-big", json={
        "command": STAMP_COMMAND, "gpu_count": 1, "hardware_type": "test-gpu", "estimated_hours": 1.0}), 200, 201)
    stack.expect(stack.client.post("/api/approvals/rules", json={
        "name": "high_cost", "condition": "cost_exceeds", "threshold": 50, "required_approver_level": "lead"}), 201)
    return user_client(stack, "rae", "researcher"), user_client(stack, "lena", "lead")


def pending_job(stack: Stack, researcher: httpx.Client) -> tuple[str, str]:
    job_id = stack.expect(researcher.post("/api/queue/submit", json={"config_name": "bench-big",
                                                                      "target": "local"}), 201)["job_id"]
    stack.wait_job(job_id, "pending_approval", timeout=30)
    return job_id, stack.expect(stack.client.get(f"/api/approvals/requests/job/{job_id}"), 200)["id"]


def queued_at(stack: Stack, job_id: str, timeout: float = 30.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(stack.data_dir / "simpletuner.db") as db:
            row = db.execute("SELECT created_at FROM jobevent WHERE job_id = ? AND event_type = 'job.queued' "
                             "ORDER BY id LIMIT 1", (job_id,)).fetchone()
        if row:
            return datetime.fromisoformat(row[0]).replace(tzinfo=timezone.utc).timestamp()
        time.sleep(0.005)
    raise RuntimeError(f"job {job_id} was never admitted")


def rest_latency(stack: Stack, researcher: httpx.Client, lead: httpx.Client, n: int) -> list[float]:
    latencies = []
    for _ in range(n):
        job_id, request_id = pending_job(stack, researcher)
        sent = time.time()
        lead.post(f"/api/approvals/requests/{request_id}/approve").raise_for_status()
        latencies.append((started_at(stack, job_id, "started") - sent) * 1000)
        stack.wait_job(job_id, "completed", timeout=30)
    return latencies


def email_latency(stack: Stack, researcher: httpx.Client, dovecot: DovecotServer, sink: SmtpSink,
                  n: int) -> list[float]:
    latencies = []
    for _ in range(n):
        job_id, _ = pending_job(stack, researcher)
        original = approval_mail(sink, job_id, "lena@corp.test")
        delivered = time.time()
        reply(dovecot, original, "lena@corp.test", "LGTM")
        latencies.append((queued_at(stack, job_id) - delivered) * 1000)
        stack.wait_job(job_id, "completed", timeout=30)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="st-bench-") as tmp, TemporalDevServer(Path(tmp) / "temporal") as temporal, \
            DovecotServer(MAIL_USERS) as dovecot:
        sink = SmtpSink(deliver_to=dovecot).start()
        stack = Stack(temporal, Path(tmp) / "approval", heartbeat_timeout=30.0)
        stack.enterprise_config.write_text(yaml.safe_dump({
            "cost": {"hourly_rates_usd": {"test-gpu*": 100.0}},
            "notifications": {"email": {
                "smtp_host": "127.0.0.1", "smtp_port": sink.port, "from_address": BOT, "imap_host": "127.0.0.1",
                "imap_port": dovecot.port, "imap_username": BOT, "imap_password": MAIL_USERS[BOT]}}}))
        stack.start()
        try:
            researcher, lead = set_up(stack)
            rest_latency(stack, researcher, lead, 2)  # warm-up
            rest = rest_latency(stack, researcher, lead, args.jobs)
            mail = email_latency(stack, researcher, dovecot, sink, args.jobs)
        finally:
            stack.stop_all()
            sink.stop()
    print(f"REST approve -> training process start, {args.jobs} jobs on an idle local agent:")
    print(f"  p50 {statistics.median(rest):7.1f} ms   p95 {pct(rest, 0.95):7.1f} ms   (target p95 <= 500 ms)")
    print(f"e-mail reply delivered to the mailbox -> job admitted (queued), {args.jobs} jobs:")
    print(f"  p50 {statistics.median(mail):7.1f} ms   p95 {pct(mail, 0.95):7.1f} ms   (target p95 <= 3000 ms)")


if __name__ == "__main__":
    main()
