"""The end-to-end harness: the control plane's real processes against a real Temporal dev server.

A ``Stack`` owns one data directory, one environment, one API port and (by default) one fresh
Temporal namespace, so tests sharing a session dev server never see each other's workflows or
GPU task queues. It starts ``cli.main server``, ``cli.main worker-host`` and ``cli.main worker``
(GPU agents) as subprocesses in their own process groups, logs each to a file under the data
directory, and ``stop_all()`` kills everything it started, training processes included.

All waiting goes through ``Stack.wait_for``: poll a condition until a deadline; on timeout the
AssertionError names what was awaited, the last value seen and the tail of every process log.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import secrets
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx

from cli.proc_scan import pid_alive, processes_under  # noqa: F401  (pid_alive: used by tests through here)
from tests.e2e.temporal_server import REPO_ROOT, TemporalDevServer, tail
from tests.ports import free_port

CONFIG_DIR = REPO_ROOT / "examples" / "configs"
TINY_CONFIG = CONFIG_DIR / "tiny-numpy.json"
CONFIG_BODY_FIELDS = ("args", "command", "gpu_count", "hardware_type", "estimated_hours", "env")
TERMINAL = frozenset({"completed", "failed", "cancelled"})
_UNSET = object()


class StackError(AssertionError):
    """A harness-level failure (a process died, a wait timed out); carries the logs in its message."""


class UnexpectedResponse(StackError):
    """An HTTP answer with a status the caller did not expect (``Stack.expect``). Inside
    ``wait_for`` it counts as "not yet" (e.g. a 503 while a process restarts)."""


# ---- processes -------------------------------------------------------------------------------

_STARTED: list["Proc"] = []


@atexit.register
def _kill_leftovers_at_exit() -> None:
    """Safety net (e.g. pytest interrupted mid-teardown): no process group outlives the session."""
    for proc in _STARTED:
        if proc.alive:
            proc.kill(signal.SIGKILL)

class Proc:
    """One subprocess in its own process group, stdout+stderr to ``log_path``."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path, log_path: Path,
                 critical: bool = False, worker_id: str | None = None) -> None:
        self.name, self.argv, self.env, self.cwd, self.log_path = name, argv, env, cwd, log_path
        self.critical = critical  # its unexpected exit fails every wait at once
        self.worker_id = worker_id
        self.expected_exit = False  # set by kill()/terminate: the test ended it on purpose
        self.started_at = time.time()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            log.write(f"===== {time.strftime('%H:%M:%S')} {' '.join(argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        _STARTED.append(self)

    def __repr__(self) -> str:
        state = "running" if self.alive else f"exited {self.popen.returncode}"
        return f"<Proc {self.name} pid={self.pid} {state}>"

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the whole process group (training processes run in their own groups)."""
        self.expected_exit = True
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def wait_exit(self, timeout: float) -> int:
        """Wait for the process to exit; AssertionError with its log tail when it does not."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise StackError(f"{self.name} (pid {self.pid}) still running after {timeout}s\n"
                             f"--- {self.log_path}\n{self.log_tail()}") from None

    def terminate_and_wait(self, timeout: float = 10.0) -> int:
        """SIGTERM the group, then SIGKILL if it has not exited within ``timeout``."""
        if self.alive:
            self.kill(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.popen.wait(10)
        self.expected_exit = True
        self._kill_group_leftovers()
        return self.popen.returncode

    def _kill_group_leftovers(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)


# ---- /proc helpers ---------------------------------------------------------------------------

# ---- the stack -------------------------------------------------------------------------------

class Stack:
    """API + worker host + agents for one test, sharing one data dir, env and namespace."""

    def __init__(self, temporal: TemporalDevServer, root: Path, *, heartbeat_timeout: float = 4.0,
                 placement_recheck: float = 1.0, namespace: str | None = None,
                 extra_env: dict[str, str] | None = None, api_tls: dict[str, Path] | None = None) -> None:
        """``api_tls``: ``ca`` / ``server_cert`` / ``server_key`` (``tests.servers.tls_proxy.make_pki``):
        the API is started with ``--ssl`` and that certificate, and the stack's own clients trust the CA
        (agents and CLIs are given it, or not, by the test)."""
        self.api_tls = api_tls
        self.temporal = temporal
        self.root = Path(root).resolve()
        self.data_dir = self.root / "data"
        self.home = self.root / "home"
        self.logs_dir = self.root / "logs"
        self.agents_dir = self.root / "agents"
        for d in (self.data_dir, self.home, self.logs_dir, self.agents_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.heartbeat_timeout = heartbeat_timeout
        self.placement_recheck = placement_recheck
        self.api_port = free_port()
        self.api_url = f"{'https' if api_tls else 'http'}://127.0.0.1:{self.api_port}"
        self.admin_token = "st_admin_" + secrets.token_hex(16)
        if namespace is None:
            namespace = os.environ.get("SIMPLETUNER_E2E_NAMESPACE") or temporal.create_namespace()
        self.namespace = namespace
        # The GPU plane of this stack: its own namespace (made by the worker host if missing) and endpoint.
        self.gpu_namespace = f"{namespace}-gpu"
        temporal.ensure_namespace(self.gpu_namespace)
        self.nexus_endpoint = "ep-" + re.sub(r"[^A-Za-z0-9-]", "-", namespace)[:60]
        self.procs: list[Proc] = []
        self.api: Proc | None = None
        self.worker_host: Proc | None = None
        self.agents: list[Proc] = []
        self._tokens: dict[str, str] = {}  # worker token -> worker id
        self._counts: dict[str, int] = {}
        self._check_no_config_file_in_cwd()
        # An explicit, empty enterprise config file: nothing from cwd, $HOME or /etc leaks in.
        self.enterprise_config = self.root / "simpletuner-enterprise.yaml"
        self.enterprise_config.write_text("# e2e: settings come from SIMPLETUNER_* env vars only\n")
        tls_env = {"SIMPLETUNER_SSL_CERT": str(api_tls["server_cert"]),
                   "SIMPLETUNER_SSL_KEY": str(api_tls["server_key"])} if api_tls else {}
        self.env = self._build_env({**tls_env, **(extra_env or {})})
        verify = ssl.create_default_context(cafile=str(api_tls["ca"])) if api_tls else True
        self.client = httpx.Client(base_url=self.api_url, timeout=15.0, trust_env=False, verify=verify,
                                   headers={"Authorization": f"Bearer {self.admin_token}"})
        self.anon = httpx.Client(base_url=self.api_url, timeout=15.0, trust_env=False, verify=verify)

    # ---- environment

    @staticmethod
    def _check_no_config_file_in_cwd() -> None:
        for ext in (".yaml", ".yml", ".json"):
            stray = REPO_ROOT / f"simpletuner-enterprise{ext}"
            if stray.exists():
                raise StackError(f"{stray} exists in the processes' working directory; the e2e tests need a clean "
                                 "repo root (move it away)")

    def _build_env(self, extra: dict[str, str]) -> dict[str, str]:
        drop = re.compile(r"^(SIMPLETUNER_|(HTTPS?|ALL|NO)_PROXY$|(https?|all|no)_proxy$)")
        env = {k: v for k, v in os.environ.items() if not drop.match(k)}
        env.update({
            "HOME": str(self.home),
            "PYTHONUNBUFFERED": "1",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "SIMPLETUNER_ENTERPRISE_CONFIG": str(self.enterprise_config),
            "SIMPLETUNER_DATA_DIR": str(self.data_dir),
            "SIMPLETUNER_TEMPORAL_ADDRESS": self.temporal.address,
            "SIMPLETUNER_TEMPORAL_NAMESPACE": self.namespace,
            "SIMPLETUNER_TEMPORAL_GPU_NAMESPACE": self.gpu_namespace,
            "SIMPLETUNER_TEMPORAL_NEXUS_ENDPOINT": self.nexus_endpoint,
            "SIMPLETUNER_HOST": "127.0.0.1",
            "SIMPLETUNER_PORT": str(self.api_port),
            "SIMPLETUNER_ADMIN_TOKEN": self.admin_token,
            "SIMPLETUNER_CONFIG_DIR": str(CONFIG_DIR),
            "SIMPLETUNER_HEARTBEAT_TIMEOUT": _num(self.heartbeat_timeout),
            "SIMPLETUNER_PLACEMENT_RECHECK_SECONDS": _num(self.placement_recheck),
            "SIMPLETUNER_LOG_LEVEL": "INFO",
            # every test client calls from 127.0.0.1; a test of the limits turns them on in extra_env
            "SIMPLETUNER_RATE_LIMIT_ENABLED": "false",
        })
        env.update(extra)
        return env

    # ---- processes

    def _spawn(self, base: str, args: list[str], critical: bool = False, worker_id: str | None = None,
               env: dict[str, str] | None = None) -> Proc:
        n = self._counts[base] = self._counts.get(base, 0) + 1
        name = base if n == 1 else f"{base}#{n}"
        log_path = self.logs_dir / f"{base}-{n}.log"
        proc = Proc(name, [sys.executable, "-m", "cli.main", *args], {**self.env, **(env or {})}, REPO_ROOT,
                    log_path, critical=critical, worker_id=worker_id)
        self.procs.append(proc)
        return proc

    def start_api(self, wait: bool = True, timeout: float = 45.0) -> Proc:
        if self.api is not None and self.api.alive:
            raise StackError("the API is already running")
        api = self.api = self._spawn("api", self._server_args(), critical=True)
        if wait:
            self.wait_for(self._live, timeout, f"API {self.api_url} to answer /api/cloud/health/live", watch=[api])
        return api

    def _server_args(self) -> list[str]:
        return ["server", "--ssl"] if self.api_tls else ["server"]

    def _live(self, url: str | None = None) -> bool:
        try:
            return self.anon.get(f"{url or self.api_url}/api/cloud/health/live", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def start_api_replica(self, port: int | None = None, timeout: float = 45.0) -> tuple[Proc, str]:
        """Another API process on the same database, data dir and namespace, on its own port
        (``port`` to bring a killed replica back where its clients expect it); (process, URL)."""
        port = port or free_port()
        url = f"{'https' if self.api_tls else 'http'}://127.0.0.1:{port}"
        proc = self._spawn("api-replica", self._server_args(), critical=True, env={"SIMPLETUNER_PORT": str(port)})
        self.wait_for(lambda: self._live(url), timeout, f"API replica {url} to answer /api/cloud/health/live",
                      watch=[proc])
        return proc, url

    def start_worker_host_replica(self, timeout: float = 45.0) -> Proc:
        """Another worker host on the same database and namespace (it shares the task queues)."""
        proc = self._spawn("worker-host-replica", ["worker-host"], critical=True)
        self.wait_for(lambda: [p for p in self._polling_since(proc.started_at) if p["identity"].startswith(f"{proc.pid}@")],
                      timeout, "a second worker host to poll the control task queue", watch=[proc])
        return proc

    def start_worker_host(self, wait: bool = True, timeout: float = 45.0) -> Proc:
        if self.worker_host is not None and self.worker_host.alive:
            raise StackError("the worker host is already running")
        proc = self.worker_host = self._spawn("worker-host", ["worker-host"], critical=True)
        if wait:
            self.wait_for(lambda: self._polling_since(proc.started_at), timeout,
                          f"worker host to poll the control task queue in namespace {self.namespace}", watch=[proc])
        return proc

    def _polling_since(self, since: float) -> list[dict[str, Any]]:
        from workflows.contracts import CONTROL_TASK_QUEUE

        pollers = self.temporal.pollers(CONTROL_TASK_QUEUE, namespace=self.namespace)  # errors: wait_for retries
        return [p for p in pollers if p["last_access_time"] >= since]

    def start(self) -> "Stack":
        """API, then worker host (sequential: both open the same SQLite database at startup)."""
        self.start_api()
        self.start_worker_host()
        return self

    def start_agent(self, token: str, name: str | None = None, persistent: bool = True,
                    gpu_count: int | None = None, extra_args: Iterable[str] = (), wait: bool | None = None,
                    work_dir: Path | None = None, timeout: float = 45.0, orchestrator_url: str | None = None) -> Proc:
        """Start ``cli.main worker`` with ``token``. When the token came from ``create_worker`` /
        ``rotate_token`` (and ``wait`` is not False) wait until that worker has (re)registered: status
        no longer connecting/offline and a heartbeat newer than before the start."""
        worker_id = self._tokens.get(token)
        label = name or (f"agent-{worker_id}" if worker_id else "agent")
        work_dir = work_dir or self.agents_dir / _slug(label)
        args = ["worker", "--orchestrator-url", orchestrator_url or self.api_url, "--worker-token", token,
                "--work-dir", str(work_dir)]
        if persistent:
            args.append("--persistent")
        if name:
            args += ["--name", name]
        if gpu_count is not None:
            args += ["--gpu-count", str(gpu_count)]
        args += list(extra_args)
        before = self.worker(worker_id).get("last_heartbeat") if worker_id and wait is not False else None
        proc = self._spawn(_slug(label), args, worker_id=worker_id)
        self.agents.append(proc)
        if worker_id and wait is not False:
            def registered() -> dict[str, Any] | None:
                w = self.worker(worker_id)
                fresh = w.get("last_heartbeat") is not None and w.get("last_heartbeat") != before
                return w if fresh and w.get("status") not in ("connecting", "offline") else None

            self.wait_for(registered, timeout, f"agent {label} ({worker_id}) to register", watch=[proc])
        return proc

    def agent_proc(self, worker_id: str) -> Proc:
        """The most recent agent process started with a token of ``worker_id``."""
        for proc in reversed(self.agents):
            if proc.worker_id == worker_id:
                return proc
        raise StackError(f"no agent process of worker {worker_id} was started by this stack")

    def stop_all(self, grace: float = 5.0) -> None:
        """Stop everything this stack started (SIGTERM, then SIGKILL after ``grace``), then any
        training process still running under the agents' work dirs. Never raises."""
        live = [p for p in self.procs if p.alive]
        for proc in live:
            proc.kill(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in live:
            try:
                proc.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.procs:
            if proc in live or proc.alive:  # (only groups whose leader we just reaped or is alive)
                proc.kill(signal.SIGKILL)
                try:
                    proc.popen.wait(5)
                except subprocess.TimeoutExpired:
                    pass
        for _ in range(3):
            leftovers = processes_under(self.agents_dir)
            if not leftovers:
                break
            for pid in leftovers:
                try:
                    pgid = os.getpgid(pid)
                    if pgid != os.getpgrp():
                        os.killpg(pgid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.1)
        if self.worker_host is not None and self.temporal.running:  # its reconciler Schedule stops too
            try:
                self.temporal.delete_schedules(self.namespace)
            except Exception:  # noqa: BLE001 - teardown never raises; the server may be down
                pass
        self.client.close()
        self.anon.close()

    # ---- diagnostics

    def logs_tail(self, lines: int = 40) -> str:
        parts = []
        for proc in self.procs:
            state = "running" if proc.alive else f"exited with {proc.returncode}"
            parts.append(f"--- {proc.name} (pid {proc.pid}, {state}) {proc.log_path}\n{proc.log_tail(lines)}")
        parts.append(f"--- temporal {self.temporal.log_path}\n{tail(self.temporal.log_path, 15)}")
        return "\n".join(parts)

    def _crashed(self, watch: Iterable[Proc] = ()) -> list[Proc]:
        watched = {id(p) for p in watch}
        return [p for p in self.procs
                if (p.critical or id(p) in watched) and not p.expected_exit and not p.alive]

    def wait_for(self, predicate: Callable[[], Any], timeout: float, what: str, *,
                 until: Callable[[Any], Any] | None = None, interval: float = 0.1,
                 watch: Iterable[Proc] = ()) -> Any:
        """Poll ``predicate()`` until it returns a truthy value (or, with ``until``, until
        ``until(value)`` is truthy) and return that value. Exceptions from the predicate count as
        "not yet". Fails at once when the API, the worker host or a ``watch``ed process exits
        unexpectedly; on timeout raises AssertionError with ``what``, the last value and log tails."""
        watch = list(watch)
        deadline = time.monotonic() + timeout
        last: Any = _UNSET
        while True:
            try:
                last = predicate()
                if (until(last) if until is not None else last):
                    return last
            except UnexpectedResponse as exc:
                last = exc
            except AssertionError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep polling; report it if we time out
                last = exc
            crashed = self._crashed(watch)
            if crashed:
                names = ", ".join(f"{p.name} (exit {p.returncode})" for p in crashed)
                raise StackError(f"while waiting for {what}: {names} exited unexpectedly\n"
                                 f"last value: {_show(last)}\n{self.logs_tail()}")
            if time.monotonic() >= deadline:
                raise StackError(f"timed out after {timeout:.1f}s waiting for {what}\n"
                                 f"last value: {_show(last)}\n{self.logs_tail()}")
            time.sleep(interval)

    def assert_stays(self, fetch: Callable[[], Any], ok: Callable[[Any], Any], duration: float, what: str,
                     interval: float = 0.2) -> Any:
        """The negative counterpart of ``wait_for``: ``ok(fetch())`` must hold on every poll for
        ``duration`` seconds (used only to show that something does *not* happen)."""
        deadline = time.monotonic() + duration
        while True:
            value = fetch()
            if not ok(value):
                raise StackError(f"expected {what} for {duration}s, but got: {_show(value)}\n{self.logs_tail()}")
            if time.monotonic() >= deadline:
                return value
            time.sleep(interval)

    def fail(self, message: str) -> None:
        raise StackError(f"{message}\n{self.logs_tail()}")

    def check(self, condition: Any, message: str) -> None:
        """``assert`` with the process logs attached."""
        if not condition:
            self.fail(message)

    # ---- REST helpers

    def expect(self, response: httpx.Response, *codes: int) -> Any:
        """The response's JSON if its status is one of ``codes``; else fail showing the body."""
        if response.status_code not in codes:
            raise UnexpectedResponse(f"{response.request.method} {response.request.url.path} -> "
                                     f"{response.status_code}, expected {codes}: {response.text[:2000]}\n"
                                     f"{self.logs_tail()}")
        try:
            return response.json()
        except ValueError:
            return response.content

    def create_worker(self, name: str, labels: dict[str, str] | None = None, local: bool = False,
                      worker_type: str = "persistent") -> tuple[str, str]:
        body = {"name": name, "worker_type": worker_type, "labels": labels or {}, "local": local}
        data = self.expect(self.client.post("/api/admin/workers", json=body), 201)
        self._tokens[data["token"]] = data["worker_id"]
        return data["worker_id"], data["token"]

    def rotate_token(self, worker_id: str) -> str:
        data = self.expect(self.client.post(f"/api/admin/workers/{worker_id}/token"), 200, 201)
        self._tokens[data["token"]] = worker_id
        return data["token"]

    def drain(self, worker_id: str) -> Any:
        return self.expect(self.client.post(f"/api/admin/workers/{worker_id}/drain"), 200, 202)

    def workers(self) -> list[dict[str, Any]]:
        return self.expect(self.client.get("/api/admin/workers"), 200)["workers"]

    def worker(self, worker_id: str) -> dict[str, Any]:
        for w in self.workers():
            if w.get("id") == worker_id or w.get("worker_id") == worker_id:
                return w
        raise KeyError(f"worker {worker_id} is not listed by GET /api/admin/workers")

    def wait_worker(self, worker_id: str, statuses: str | Iterable[str], timeout: float = 30.0) -> dict[str, Any]:
        wanted = {statuses} if isinstance(statuses, str) else set(statuses)
        return self.wait_for(lambda: self.worker(worker_id), timeout, f"worker {worker_id} status in {sorted(wanted)}",
                             until=lambda w: w.get("status") in wanted)

    def wait_heartbeats(self, worker_id: str, count: int = 2, timeout: float | None = None) -> dict[str, Any]:
        """Wait until ``count`` new heartbeats of the worker have been recorded; returns the worker."""
        seen = [self.worker(worker_id).get("last_heartbeat")]

        def newer() -> dict[str, Any] | None:
            w = self.worker(worker_id)
            if w.get("last_heartbeat") not in seen:
                seen.append(w.get("last_heartbeat"))
            return w if len(seen) > count else None

        return self.wait_for(newer, timeout or 4 * self.heartbeat_timeout + 10,
                             f"{count} new heartbeat(s) of worker {worker_id}")

    def worker_heartbeat(self, token: str, state: str = "idle", current_job_id: str | None = None) -> httpx.Response:
        """A heartbeat as an agent would send it (for token checks)."""
        return self.anon.post("/api/workers/heartbeat", headers={"X-Worker-Token": token},
                              json={"state": state, "current_job_id": current_job_id})


    @property
    def database_url(self) -> str:
        return self.env.get("SIMPLETUNER_DATABASE_URL") or f"sqlite:///{self.data_dir / 'simpletuner.db'}"

    def sql(self, query: str, **params: Any) -> list[dict[str, Any]]:
        """Rows of a read-only query on the stack's database (SQLite or PostgreSQL), as dicts."""
        from sqlalchemy import create_engine, text
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return [dict(row._mapping) for row in conn.execute(text(query), params)]
        finally:
            engine.dispose()

    def sql_write(self, statement: str, **params: Any) -> int:
        """Run one writing statement on the stack's database (to stage a state a test needs); rows changed."""
        from sqlalchemy import create_engine, text
        engine = create_engine(self.database_url)
        try:
            with engine.begin() as conn:
                return conn.execute(text(statement), params).rowcount
        finally:
            engine.dispose()

    @staticmethod
    def tiny_config() -> dict[str, Any]:
        """tiny-numpy's PUT body, ``{config_dir}`` resolved (as the config-dir loader does)."""
        if not TINY_CONFIG.exists():
            raise StackError(f"{TINY_CONFIG} is missing")
        raw = json.loads(TINY_CONFIG.read_text())
        if "args" not in raw and isinstance(raw.get("config"), dict):
            raw = raw["config"]
        directory = str(CONFIG_DIR.resolve())
        body = {key: raw[key] for key in CONFIG_BODY_FIELDS if key in raw}
        body["command"] = [str(part).replace("{config_dir}", directory) for part in raw.get("command", [])]
        body["env"] = {k: str(v).replace("{config_dir}", directory) for k, v in (raw.get("env") or {}).items()}
        body.setdefault("args", {})
        body.setdefault("gpu_count", 1)
        body.setdefault("hardware_type", "cpu")
        body.setdefault("estimated_hours", 0.01)
        return body

    def put_config(self, name: str, *, gpu_count: int | None = None, env: dict[str, str] | None = None,
                   command: list[str] | None = None, **args: Any) -> dict[str, Any]:
        """PUT a variant of tiny-numpy named ``name`` whose args are tiny's updated with ``args``."""
        body = self.tiny_config()
        body["args"] = {**body["args"], **args}
        if gpu_count is not None:
            body["gpu_count"] = gpu_count
        if env is not None:
            body["env"] = env
        if command is not None:
            body["command"] = command
        return self.expect(self.client.put(f"/api/configs/{name}", json=body), 200, 201)

    def submit(self, **body: Any) -> dict[str, Any]:
        """POST /api/queue/submit; expects 201 (new) or 200 (idempotent replay); returns the JSON."""
        return self.expect(self.client.post("/api/queue/submit", json=body), 200, 201)

    def job(self, job_id: str) -> dict[str, Any]:
        return self.expect(self.client.get(f"/api/cloud/jobs/{job_id}"), 200)

    def jobs(self, **params: Any) -> dict[str, Any]:
        """GET /api/cloud/jobs → ``{"jobs": [...], "total": n}``."""
        return self.expect(self.client.get("/api/cloud/jobs", params=params), 200)

    def job_count(self) -> int:
        return int(self.jobs()["total"])

    def cancel(self, job_id: str) -> httpx.Response:
        return self.client.post(f"/api/cloud/jobs/{job_id}/cancel")

    def logs(self, job_id: str) -> list[dict[str, Any]]:
        return self.expect(self.client.get(f"/api/cloud/jobs/{job_id}/logs"), 200)["lines"]

    def wait_job(self, job_id: str, statuses: str | Iterable[str], timeout: float = 60.0) -> dict[str, Any]:
        """Wait until the job's status is one of ``statuses``; fails early if it reaches another
        terminal status."""
        wanted = {statuses} if isinstance(statuses, str) else set(statuses)

        def fetch() -> dict[str, Any]:
            job = self.job(job_id)
            if job["status"] in TERMINAL and job["status"] not in wanted:
                self.fail(f"job {job_id} ended {job['status']} while waiting for {sorted(wanted)}: "
                          f"{json.dumps(job, default=str)[:2000]}")
            return job

        return self.wait_for(fetch, timeout, f"job {job_id} status in {sorted(wanted)}",
                             until=lambda job: job["status"] in wanted)

    def wait_running(self, job_id: str, timeout: float = 60.0) -> tuple[dict[str, Any], list[int]]:
        """Wait until the job is running *and* its training process exists; returns (job, pids)."""
        self.wait_job(job_id, "running", timeout)
        pids = self.wait_for(lambda: self.training_pids(job_id), timeout,
                             f"a training process of job {job_id} under {self.agents_dir}")
        return self.job(job_id), pids

    def training_pids(self, job_id: str) -> list[int]:
        """Live processes running in (or pointing into) ``<agent work dir>/<job_id>/...``."""
        return processes_under(self.agents_dir, must_contain=job_id)

    def workflow_count(self) -> int:
        """How many job workflows (any status) Temporal's visibility knows in this stack's namespace."""
        async def go(client: Any) -> int:
            return (await client.count_workflows("WorkflowType = 'TrainingJobWorkflow'")).count

        return self.temporal.call(go, namespace=self.namespace)

    def workflow_details(self, job_id: str) -> str:
        """The job workflow's current details, as the Temporal Web UI shows them."""
        async def go(client: Any) -> str:
            from temporalio.api.sdk.v1 import WorkflowMetadata

            meta = await client.get_workflow_handle(job_id).query("__temporal_workflow_metadata",
                                                                  result_type=WorkflowMetadata)
            return meta.current_details

        return self.temporal.call(go, namespace=self.namespace)

    def workflow_status(self, job_id: str) -> str:
        """The Temporal workflow's execution status name (``RUNNING``, ``COMPLETED``, ...)."""
        return self.temporal.describe_workflow(job_id, namespace=self.namespace).status.name


# ---- small helpers -------------------------------------------------------------------------

def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text)[:60] or "agent"


def _show(value: Any) -> str:
    if value is _UNSET:
        return "<never evaluated>"
    if isinstance(value, BaseException):
        first = (str(value).splitlines() or [""])[0]
        return f"exception {type(value).__name__}: {first[:3000]}"
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text[:3000]


def detail_text(response: httpx.Response) -> str:
    """The ``detail`` of an error response as lowercase text (string or FastAPI's list form)."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return ""
    return (detail if isinstance(detail, str) else json.dumps(detail)).lower()


def progress_percent(progress: dict[str, Any] | None) -> float | None:
    """Percent complete from a job's ``progress`` dict: ``percent`` (0-100), else ``step`` over
    ``total_steps``/``steps``/``total``."""
    if not progress:
        return None
    if isinstance(progress.get("percent"), (int, float)):
        return float(progress["percent"])
    step = progress.get("step")
    total = next((progress[k] for k in ("total_steps", "steps", "total") if isinstance(progress.get(k), (int, float))),
                 None)
    if isinstance(step, (int, float)) and total:
        return 100.0 * step / total
    return None
