"""Benchmark (run by hand, prints numbers): the control plane at scale, on SQLite and on PostgreSQL.

Each backend gets its own Temporal dev server and stack (API + worker host as real processes, no
GPU agent); the three measurements run one after the other on that stack.

1. Jobs waiting for approval: W jobs (a rule requires approval for every job of their config) are
   submitted through the API by researchers from C threads, one client each; once all are
   ``pending_approval``: the worker host's RSS (``VmRSS`` of the process and its children), and the
   p50/p95 of ``GET /api/cloud/jobs?status=pending_approval&limit=100`` and of
   ``GET /api/approvals/requests/pending/count`` (sequential requests as the admin), next to the
   raw floor of the same run: ``GET /api/cloud/health/live``, a trivial route.
2. A burst of B submissions from C clients: jobs that need no approval and wait in the queue
   (``max_concurrent`` 1, no agent, so the admitted one waits for an agent); errors, p50/p95
   latency, submissions/s, and the ratio against raw Temporal workflow starts of a trivial workflow
   with C concurrent starters on the same server in the same run (``bench/admission.py``).
3. S open ``/api/events/stream`` connections as the admin (resuming from the latest event, as a
   reconnecting client does): the API process's CPU while nothing happens (10 s, % of one core),
   and for N job status changes (a queued job is cancelled) the delay from the event's
   ``created_at`` to the moment the last of the S streams has received it, p50/p95.

Targets: worker-host RSS <= 1 GiB with 10,000 jobs waiting; job list p95 <= 100 ms; pending-count
p95 <= 50 ms; burst: 0 errors and >= 0.5x raw starts; the last of 500 streams p95 <= 1 s.
Every number depends on the host: other work on it skews them, so each part prints the 1-minute
load average. On 2 CPUs the full size takes about half an hour per backend, most of it the worker
host evaluating the 10,000 submissions (~10/s there); ``--backend`` runs one.
Needs PostgreSQL for the postgresql backend (``bash tests/servers/install.sh``).
Usage: .venv/bin/python bench/scale.py [--backend sqlite|postgresql|both] [--waiting 10000]
           [--burst 1000] [--clients 32] [--streams 500] [--changes 20] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.admission import raw_start_rate  # noqa: E402
from bench.dispatch import STAMP_COMMAND, pct  # noqa: E402
from tests.e2e.stack import Stack  # noqa: E402
from tests.e2e.temporal_server import TemporalDevServer  # noqa: E402
from tests.e2e.test_users_and_auth import bearer_for, make_user  # noqa: E402
from tests.servers.postgres_server import PostgresServer  # noqa: E402

GIB = 1024 ** 3
WAIT_CONFIG, QUEUE_CONFIG = "bench-wait", "bench-queue"
CLIENT_TIMEOUT = 120.0  # a submission slower than this counts as an error
READS = 200
IDLE_SECONDS = 10.0


def log(message: str) -> None:
    """Progress on stderr (the numbers go to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Row:
    backend: str
    what: str
    value: str
    goal: str
    met: bool | None  # None: context, no goal


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def add(self, backend: str, what: str, value: str, goal: str = "", met: bool | None = None) -> None:
        self.rows.append(Row(backend, what, value, goal, met))

    def table(self) -> str:
        widths = [max(len(getattr(r, name)) for r in self.rows) for name in ("backend", "what", "value", "goal")]
        lines = []
        for r in self.rows:
            verdict = "" if r.met is None else ("met" if r.met else "NOT MET")
            cells = (r.backend, r.what, r.value, r.goal)
            lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths)) + "  " + verdict)
        return "\n".join(lines)


# ---- /proc -----------------------------------------------------------------------------------

def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children[int(stat.rsplit(")", 1)[1].split()[1])].append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def rss_bytes(pid: int, key: str = "VmRSS") -> int:
    """``key`` (VmRSS now, VmHWM the peak) of ``pid`` plus its children, in bytes."""
    total = 0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its children so far."""
    ticks = 0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ---- set-up ----------------------------------------------------------------------------------

def researchers(stack: Stack, n: int) -> list[httpx.Client]:
    clients = []
    for i in range(n):
        make_user(stack, f"bench{i:02d}", "researcher")
        client = bearer_for(stack, f"bench{i:02d}")
        client.timeout = httpx.Timeout(CLIENT_TIMEOUT)
        clients.append(client)
    return clients


def set_up(stack: Stack) -> None:
    for name in (WAIT_CONFIG, QUEUE_CONFIG):
        stack.expect(stack.client.put(f"/api/configs/{name}", json={"command": STAMP_COMMAND, "gpu_count": 1}),
                     200, 201)
    stack.expect(stack.client.post("/api/approvals/rules", json={
        "name": "every-bench-wait-job", "condition": "config_pattern", "threshold": WAIT_CONFIG,
        "required_approver_level": "lead"}), 201)
    stack.expect(stack.client.post("/api/queue/concurrency", json={"max_concurrent": 1}), 200)


@dataclass
class Submissions:
    latencies: list[float]  # ms, answered ones
    errors: list[str]
    job_ids: list[str]
    seconds: float


def submit_from(clients: list[httpx.Client], n: int, config: str) -> Submissions:
    """``n`` submissions of ``config``, spread over ``clients``, one thread per client."""
    body = {"config_name": config, "target": "local"}
    shares = [n // len(clients) + (1 if i < n % len(clients) else 0) for i in range(len(clients))]
    stop = threading.Event()  # Ctrl-C: the threads stop after their current request

    def loop(client: httpx.Client, count: int) -> Submissions:
        out = Submissions([], [], [], 0.0)
        for _ in range(count):
            if stop.is_set():
                break
            t0 = time.perf_counter()
            try:
                answer = client.post("/api/queue/submit", json=body)
            except httpx.HTTPError as exc:
                out.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            out.latencies.append((time.perf_counter() - t0) * 1000)
            if answer.status_code == 201:
                out.job_ids.append(answer.json()["job_id"])
            else:
                out.errors.append(f"{answer.status_code}: {answer.text[:300]}")
        return out

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        t0 = time.monotonic()
        try:
            parts = list(pool.map(loop, clients, shares))
        except BaseException:
            stop.set()
            raise
        seconds = time.monotonic() - t0
    return Submissions([x for p in parts for x in p.latencies], [x for p in parts for x in p.errors],
                       [x for p in parts for x in p.job_ids], seconds)


def total(stack: Stack, status: str) -> int:
    return int(stack.jobs(status=status, limit=1)["total"])


def wait_for_status(stack: Stack, status: str, n: int, timeout: float) -> float:
    """Until ``n`` jobs are ``status`` (progress every 15 s); fails at once if any job failed."""
    t0 = last_report = time.monotonic()

    def count() -> int:
        nonlocal last_report
        failed = total(stack, "failed")
        if failed:
            stack.fail(f"{failed} job(s) failed: {stack.jobs(status='failed', limit=3)['jobs']}")
        seen = total(stack, status)
        if time.monotonic() - last_report > 15:
            last_report = time.monotonic()
            log(f"  {seen}/{n} {status}, {total(stack, 'pending')} pending")
        return seen

    stack.wait_for(count, timeout, f"{n} jobs {status}", until=lambda seen: seen >= n, interval=1.0)
    return time.monotonic() - t0


def timed_get(client: httpx.Client, path: str, **params: Any) -> float:
    t0 = time.perf_counter()
    client.get(path, params=params).raise_for_status()
    return (time.perf_counter() - t0) * 1000


def ms(values: list[float]) -> str:
    return f"p50 {statistics.median(values):7.1f} ms   p95 {pct(values, 0.95):7.1f} ms"


# ---- 1. jobs waiting for approval ------------------------------------------------------------

def waiting_jobs(stack: Stack, clients: list[httpx.Client], n: int, backend: str, report: Report) -> None:
    log(f"{backend}: submitting {n} jobs that wait for approval from {len(clients)} clients")
    sent = submit_from(clients, n, WAIT_CONFIG)
    if sent.errors:
        stack.fail(f"{len(sent.errors)} of {n} submissions failed, e.g. {sent.errors[:3]}")
    settled = wait_for_status(stack, "pending_approval", n, timeout=max(300.0, n / 4))
    rss, peak = rss_bytes(stack.worker_host.pid), rss_bytes(stack.worker_host.pid, "VmHWM")

    reads: dict[str, list[float]] = {"list": [], "count": [], "live": []}
    for i in range(READS + 10):  # interleaved, so all three see the same moment; 10 warm-up rounds
        samples = {"list": timed_get(stack.client, "/api/cloud/jobs", status="pending_approval", limit=100),
                   "count": timed_get(stack.client, "/api/approvals/requests/pending/count"),
                   "live": timed_get(stack.anon, "/api/cloud/health/live")}
        if i >= 10:
            for key, value in samples.items():
                reads[key].append(value)
    load = os.getloadavg()[0]
    counted = stack.expect(stack.client.get("/api/approvals/requests/pending/count"), 200)["count"]
    stack.check(counted >= n, f"pending count {counted}, expected {n}")

    print(f"1. {n} jobs waiting for approval ({len(clients)} clients submitted them at "
          f"{n / sent.seconds:.1f}/s; all pending_approval {settled:.0f} s after the last answer):")
    print(f"  worker-host RSS {rss / 2**20:7.1f} MiB (peak {peak / 2**20:.1f} MiB)   (target <= 1024 MiB)")
    print(f"  GET /api/cloud/jobs?status=pending_approval&limit=100  {ms(reads['list'])}   (target p95 <= 100 ms)")
    print(f"  GET /api/approvals/requests/pending/count              {ms(reads['count'])}   (target p95 <= 50 ms)")
    print(f"  raw floor, GET /api/cloud/health/live                  {ms(reads['live'])}")
    print(f"  host load average (1 min) after the reads: {load:.1f}")
    report.add(backend, f"worker-host RSS, {n} waiting", f"{rss / 2**20:.0f} MiB", "<= 1024 MiB", rss <= GIB)
    report.add(backend, "job list p95", f"{pct(reads['list'], 0.95):.1f} ms", "<= 100 ms",
               pct(reads["list"], 0.95) <= 100)
    report.add(backend, "pending count p95", f"{pct(reads['count'], 0.95):.1f} ms", "<= 50 ms",
               pct(reads["count"], 0.95) <= 50)
    report.add(backend, "health/live p95 (floor)", f"{pct(reads['live'], 0.95):.1f} ms")


# ---- 2. a burst of submissions ---------------------------------------------------------------

def burst(stack: Stack, clients: list[httpx.Client], n: int, backend: str, report: Report) -> None:
    before = total(stack, "queued")
    submit_from(clients, len(clients), QUEUE_CONFIG)  # warm-up: one per client (connections, code paths)
    log(f"{backend}: a burst of {n} submissions from {len(clients)} clients")
    sent = submit_from(clients, n, QUEUE_CONFIG)
    ok = len(sent.job_ids)
    ours = ok / sent.seconds
    load_burst = os.getloadavg()[0]
    # the queue settles before the raw starts (they get a quiet server, as the burst did) and before the
    # next measurement: every job evaluated and waiting for a slot (or, the admitted one, for an agent)
    wait_for_status(stack, "queued", before + len(clients) + ok, timeout=max(300.0, n / 2))
    log(f"{backend}: raw Temporal workflow starts, {n} from {len(clients)} concurrent starters")
    raw = asyncio.run(raw_start_rate(stack.temporal.address, stack.namespace, n, concurrency=len(clients)))
    load_raw = os.getloadavg()[0]

    print(f"2. a burst of {n} submissions from {len(clients)} clients (no approval, waiting behind max_concurrent=1):")
    print(f"  errors {len(sent.errors)}   (target 0)" + (f"   e.g. {sent.errors[:2]}" if sent.errors else ""))
    print(f"  latency {ms(sent.latencies)}")
    print(f"  {ours:6.1f}/s via POST /api/queue/submit, {raw:6.1f}/s raw workflow starts ({len(clients)} starters); "
          f"ratio {ours / raw:.2f}x   (target >= 0.5x)")
    print(f"  host load average (1 min) after the burst {load_burst:.1f}, after the raw starts {load_raw:.1f}")
    report.add(backend, f"burst of {n}: errors", str(len(sent.errors)), "0", not sent.errors)
    report.add(backend, "burst latency p95", f"{pct(sent.latencies, 0.95):.0f} ms")
    report.add(backend, "burst submissions/s", f"{ours:.1f}/s (raw {raw:.1f}/s)")
    report.add(backend, "burst / raw starts", f"{ours / raw:.2f}x", ">= 0.5x", ours / raw >= 0.5)


# ---- 3. open event streams -------------------------------------------------------------------

class EventStream:
    """One ``/api/events/stream`` connection; remembers when each (job, status) event arrived."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.error: BaseException | None = None
        self.arrived: dict[tuple[str, str], float] = {}

    async def run(self, client: httpx.AsyncClient, after: int, created: dict[tuple[str, str], str]) -> None:
        try:
            async with client.stream("GET", "/api/events/stream", headers={"Last-Event-ID": str(after)}) as answer:
                self.status = answer.status_code
                data = None
                async for line in answer.aiter_lines():
                    if line.startswith("data:"):
                        data = line[5:].strip()
                    elif line == "" and data is not None:
                        now = time.time()
                        event = json.loads(data)
                        key = (event.get("job_id"), event.get("status"))
                        self.arrived.setdefault(key, now)
                        created.setdefault(key, event.get("created_at"))
                        data = None
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - reported by the bench
            self.error = exc


def epoch(timestamp: str) -> float:
    moment = datetime.fromisoformat(timestamp)
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


async def until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


async def stream_delays(stack: Stack, n_streams: int, job_ids: list[str], warm_up: int) -> dict[str, Any]:
    """Idle API CPU before and with ``n_streams`` open streams; per cancelled job, event -> last stream."""
    api_pid = stack.api.pid
    cpu0 = cpu_seconds(api_pid)
    await asyncio.sleep(IDLE_SECONDS)
    idle_without = (cpu_seconds(api_pid) - cpu0) / IDLE_SECONDS * 100

    latest = stack.sql("SELECT MAX(id) AS id FROM jobevent")[0]["id"] or 0
    created: dict[tuple[str, str], str] = {}
    streams = [EventStream() for _ in range(n_streams)]
    limits = httpx.Limits(max_connections=n_streams + 10, max_keepalive_connections=20)
    headers = {"Authorization": f"Bearer {stack.admin_token}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, limits=limits, trust_env=False,
                                 timeout=httpx.Timeout(60.0, read=None, pool=60.0)) as client:
        tasks = [asyncio.create_task(s.run(client, latest, created)) for s in streams]
        try:
            await until(lambda: all(s.status or s.error for s in streams), 120, f"{n_streams} streams to open",
                        interval=0.1)
            broken = [s for s in streams if s.status != 200]
            if broken:
                raise RuntimeError(f"{len(broken)} of {n_streams} streams did not open: "
                                   f"{broken[0].status} {broken[0].error!r}")
            await asyncio.sleep(2.0)
            cpu0 = cpu_seconds(api_pid)
            await asyncio.sleep(IDLE_SECONDS)
            idle_with = (cpu_seconds(api_pid) - cpu0) / IDLE_SECONDS * 100

            from_event, from_request = [], []
            for job_id in job_ids:
                key = (job_id, "cancelled")
                requested = time.time()
                answer = await client.post(f"/api/cloud/jobs/{job_id}/cancel")
                stack.expect(answer, 202)
                await until(lambda: all(key in s.arrived for s in streams) or any(s.error for s in streams), 60,
                            f"the cancellation of {job_id} on all {n_streams} streams")
                broken = [s for s in streams if s.error]
                if broken:
                    raise RuntimeError(f"{len(broken)} streams broke, e.g. {broken[0].error!r}")
                last = max(s.arrived[key] for s in streams)
                from_event.append((last - epoch(created[key])) * 1000)
                from_request.append((last - requested) * 1000)
                await asyncio.sleep(0.2)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return {"idle_without": idle_without, "idle_with": idle_with,
            "from_event": from_event[warm_up:], "from_request": from_request[warm_up:]}


def event_streams(stack: Stack, n_streams: int, changes: int, backend: str, report: Report) -> None:
    warm_up = 2
    # jobs to cancel: the admin's, waiting in the queue for a slot (the slot is held by an earlier job)
    submitted = [stack.submit(config_name=QUEUE_CONFIG, target="local")["job_id"] for _ in range(changes + warm_up + 1)]
    waiting = []
    for job_id in submitted:
        job = stack.wait_job(job_id, "queued", timeout=60)
        if (job.get("queue_reason") or "").startswith("waiting for a slot"):
            waiting.append(job_id)
    stack.check(len(waiting) >= changes + warm_up, f"only {len(waiting)} jobs wait for a slot")
    log(f"{backend}: {n_streams} event streams, {changes} status changes")
    found = asyncio.run(stream_delays(stack, n_streams, waiting[:changes + warm_up], warm_up))
    delays = found["from_event"]
    load = os.getloadavg()[0]

    print(f"3. {n_streams} open /api/events/stream connections (admin), {changes} status changes (a queued job "
          f"cancelled):")
    print(f"  API CPU while idle: {found['idle_with']:5.1f}% of one core with the streams open "
          f"({found['idle_without']:.1f}% with none), over {IDLE_SECONDS:.0f} s")
    print(f"  event created_at -> the last of the {n_streams} streams has it   {ms(delays)}   (target p95 <= 1000 ms)")
    print(f"  cancel request sent -> the last stream has the event            {ms(found['from_request'])}")
    print(f"  host load average (1 min) after the changes: {load:.1f}")
    report.add(backend, f"API idle CPU, {n_streams} streams", f"{found['idle_with']:.1f}% of a core "
                                                              f"(none open: {found['idle_without']:.1f}%)")
    report.add(backend, f"event -> last of {n_streams} p95", f"{pct(delays, 0.95):.0f} ms", "<= 1000 ms",
               pct(delays, 0.95) <= 1000)


# ---- one backend -----------------------------------------------------------------------------

def run_backend(backend: str, root: Path, args: argparse.Namespace, postgres: PostgresServer | None,
                report: Report) -> None:
    extra_env = {"SIMPLETUNER_DATABASE_URL": postgres.create_database()} if postgres else {}
    with TemporalDevServer(root / f"temporal-{backend}") as temporal:
        stack = Stack(temporal, root / backend, heartbeat_timeout=30.0, extra_env=extra_env).start()
        try:
            if postgres:
                version = "PostgreSQL " + stack.sql("SHOW server_version")[0]["server_version"]
            else:
                version = f"SQLite {sqlite3.sqlite_version}"
            print(f"\n=== backend: {backend} ({version}); stack logs in {stack.logs_dir}", flush=True)
            set_up(stack)
            clients = researchers(stack, args.clients)
            try:
                waiting_jobs(stack, clients, args.waiting, backend, report)
                burst(stack, clients, args.burst, backend, report)
                event_streams(stack, args.streams, args.changes, backend, report)
            finally:
                for client in clients:
                    client.close()
        except BaseException:
            print(f"--- {backend} failed; log tails:\n{stack.logs_tail(60)}", file=sys.stderr)
            raise
        finally:
            stack.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--waiting", type=int, default=10_000)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs, databases)")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # each result is out as soon as it is measured
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    nofile = raise_fd_limit()  # the stack's processes inherit it too
    nproc = len(os.sched_getaffinity(0))
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB
    print(f"host: nproc {nproc}, {memory:.1f} GiB RAM; open files limit {nofile}; backends: {', '.join(backends)}")
    print(f"sizes: --waiting {args.waiting} --burst {args.burst} --clients {args.clients} "
          f"--streams {args.streams} --changes {args.changes}")
    report = Report()
    root = Path(tempfile.mkdtemp(prefix="st-bench-scale-"))
    postgres = PostgresServer().start() if "postgresql" in backends else None
    t0 = time.monotonic()
    try:
        for backend in backends:
            run_backend(backend, root, args, postgres if backend == "postgresql" else None, report)
    finally:
        if postgres is not None:
            postgres.stop()
        if args.keep:
            print(f"working directory kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\n=== summary (nproc {nproc}; {time.monotonic() - t0:.0f} s in all)")
    print(report.table())


if __name__ == "__main__":
    main()
