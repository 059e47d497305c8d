"""Benchmark (run by hand, prints numbers): what the operations middleware costs, and a metrics scrape
with 10,000 jobs in the database.

Two API processes on one SQLite database, started by ``bench/ops_server.py`` like
``simpletuner server``: one with everything on (the correlation id, HTTP metrics with metrics enabled
on the ``full`` template, rate limits counted in the database backend, JSON logs with the access log),
one ``--bare`` (those middlewares taken out, text logs, no access log). Requests alternate between
the two in blocks, so both see the same host.

1. ``GET /api/cloud/jobs/{id}`` as the admin: p50/p95 on and off, and the ratio (goal <= 1.2x).
2. ``GET /api/cloud/metrics/prometheus`` with 10,000 jobs (and their statuses, costs) in the database:
   p50/p95 (goal p95 <= 100 ms).
Each next to the raw floor of the same run: ``GET /api/cloud/health/live`` on the bare process.
Rate limits: a 1-second window with a limit no request reaches, so every request is counted and none
refused. Temporal is not needed (nothing here starts a workflow).
Usage: .venv/bin/python bench/ops.py [--jobs 10000] [--requests 2000] [--scrapes 200] [--keep]
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.ports import free_port  # noqa: E402

STATUSES = ["completed"] * 6 + ["failed", "cancelled", "running", "queued", "pending_approval", "pending"]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def start(name: str, env: dict[str, str], port: int, logs: Path, bare: bool) -> subprocess.Popen:
    argv = [sys.executable, str(ROOT / "bench" / "ops_server.py")] + (["--bare"] if bare else [])
    log = open(logs / f"{name}.log", "wb")
    proc = subprocess.Popen(argv, env={**env, "SIMPLETUNER_PORT": str(port)}, stdout=log, stderr=subprocess.STDOUT,
                            cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited with {proc.returncode}; see {logs / f'{name}.log'}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/cloud/health/live", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{name} did not answer within 60 s; see {logs / f'{name}.log'}")


def seed_jobs(env: dict[str, str], owner_id: str, owner_name: str, n: int) -> list[str]:
    os.environ.update({k: v for k, v in env.items() if k.startswith("SIMPLETUNER_")})
    from activities.db.models import Job, utcnow
    from activities.runtime import open_database
    from activities.settings import load_settings

    db = open_database(load_settings())
    rng = random.Random(7)
    now = utcnow()
    ids = []
    with db.session() as session:
        for i in range(n):
            status = rng.choice(STATUSES)
            created = now - timedelta(minutes=n - i)
            done = status in ("completed", "failed", "cancelled")
            job = Job(id=f"job-bench-{i:06d}", owner_id=owner_id, owner_name=owner_name, config_name=f"cfg-{i % 20}",
                      target="worker", request_hash=secrets.token_hex(8), status=status, created_at=created,
                      updated_at=created, started_at=created if status != "pending" else None,
                      finished_at=created + timedelta(seconds=rng.randint(60, 7200)) if done else None,
                      cost_estimate_usd=round(rng.uniform(0.1, 40), 2),
                      cost_usd=round(rng.uniform(0.1, 40), 2) if status == "completed" else None)
            session.add(job)
            ids.append(job.id)
            if i % 1000 == 999:
                session.commit()
        session.commit()
    db.engine.dispose()
    return ids


def timed(client: httpx.Client, url: str) -> float:
    started = time.perf_counter()
    answer = client.get(url)
    took = (time.perf_counter() - started) * 1000
    if answer.status_code != 200:
        raise SystemExit(f"GET {url}: {answer.status_code} {answer.text[:200]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ops-"))
    logs = work / "logs"
    logs.mkdir()
    token = "st_admin_" + secrets.token_hex(16)
    (work / "empty.yaml").write_text("{}\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith("SIMPLETUNER_")}
    base.update({"SIMPLETUNER_ENTERPRISE_CONFIG": str(work / "empty.yaml"), "SIMPLETUNER_DATA_DIR": str(work / "data"),
                 "SIMPLETUNER_ADMIN_TOKEN": token, "SIMPLETUNER_HOST": "127.0.0.1",
                 "SIMPLETUNER_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}", "SIMPLETUNER_LOG_LEVEL": "INFO"})
    on_env = {**base, "SIMPLETUNER_LOG_FORMAT": "json", "SIMPLETUNER_RATE_LIMIT_ENABLED": "true",
              "SIMPLETUNER_RATE_LIMIT_DEFAULT_CALLS": "1000000", "SIMPLETUNER_RATE_LIMIT_DEFAULT_PERIOD": "1"}
    off_env = {**base, "SIMPLETUNER_LOG_FORMAT": "text", "SIMPLETUNER_RATE_LIMIT_ENABLED": "false"}
    procs = []
    print(f"host: nproc {os.cpu_count()}; {args.jobs} jobs, {args.requests} requests per side, "
          f"{args.scrapes} scrapes; work dir {work}")
    try:
        on_port, off_port = free_port(), free_port()
        procs.append(start("on", on_env, on_port, logs, bare=False))
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{on_port}", headers=headers, timeout=30) as on:
            me = on.get("/api/users/me").json()
            ids = seed_jobs(on_env, me["id"], me["username"], args.jobs)
            enabled = on.put("/api/cloud/metrics/config", json={"enabled": True, "template": "full"})
            if enabled.status_code != 200:
                raise SystemExit(f"enabling metrics: {enabled.status_code} {enabled.text}")
            procs.append(start("off", off_env, off_port, logs, bare=True))
            with httpx.Client(base_url=f"http://127.0.0.1:{off_port}", headers=headers, timeout=30) as off:
                rng = random.Random(11)
                for client in (on, off):  # warm both
                    for _ in range(50):
                        timed(client, f"/api/cloud/jobs/{rng.choice(ids)}")
                got: dict[str, list[float]] = {"on": [], "off": [], "floor": []}
                block = 50
                for _ in range(args.requests // block):
                    for name, client in (("on", on), ("off", off)):
                        for _ in range(block):
                            got[name].append(timed(client, f"/api/cloud/jobs/{rng.choice(ids)}"))
                    for _ in range(block // 5):
                        got["floor"].append(timed(off, "/api/cloud/health/live"))
                load = os.getloadavg()[0]
                print("1. GET /api/cloud/jobs/{id}")
                for name in ("on", "off", "floor"):
                    label = {"on": "operations middleware on", "off": "operations middleware off",
                             "floor": "raw floor, GET /api/cloud/health/live (off)"}[name]
                    print(f"  {label:46} p50 {statistics.median(got[name]):7.2f} ms   p95 {pct(got[name], .95):7.2f} ms")
                ratio50 = statistics.median(got["on"]) / statistics.median(got["off"])
                ratio95 = pct(got["on"], .95) / pct(got["off"], .95)
                print(f"  on / off: p50 {ratio50:.2f}x, p95 {ratio95:.2f}x   (goal <= 1.2x); load average {load:.1f}")
                scrapes = [timed(on, "/api/cloud/metrics/prometheus") for _ in range(args.scrapes)]
                size = len(on.get("/api/cloud/metrics/prometheus").content)
                floor = [timed(on, "/api/cloud/health/live") for _ in range(args.scrapes)]
                print(f"2. GET /api/cloud/metrics/prometheus with {args.jobs} jobs ({size} bytes, template full)")
                print(f"  scrape                                         p50 {statistics.median(scrapes):7.2f} ms   "
                      f"p95 {pct(scrapes, .95):7.2f} ms   (goal p95 <= 100 ms)")
                print(f"  raw floor, GET /api/cloud/health/live (on)     p50 {statistics.median(floor):7.2f} ms   "
                      f"p95 {pct(floor, .95):7.2f} ms; load average {os.getloadavg()[0]:.1f}")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
