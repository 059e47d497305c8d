"""`simpletuner dev`: the whole stack on one machine, in the foreground, stopped by Ctrl-C.

Starts the Temporal dev server (SQLite file and Web UI), the worker host, the API and one local
GPU agent, all under the data directory (default ``.data/``). The demo config comes from
``examples/configs`` unless SIMPLETUNER_CONFIG_DIR says otherwise.

SIGINT or SIGTERM stops everything it started within ``STOP_SECONDS``: each process group gets
SIGTERM at once (the agent gives its running job ``AGENT_GRACE`` seconds), what is left gets
SIGKILL, then any training process still running in the agent's directory. The local agent's
token reaches it through its environment (readable only by its user), never its command line.

``make run`` starts it with ``SIMPLETUNER_DEV_PARENT_PID`` set to make's pid: make passes SIGTERM
on to its recipe but not SIGINT (it expects the terminal to have sent that to the whole group), so
a ``kill -INT`` of make alone is noticed here through make's signal dispositions: make resets its
SIGINT/SIGTERM handler to the default when it receives one, and the stack stops; it also stops when
make is gone.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from activities.runtime import configure_logging
from activities.settings import load_settings
from cli.proc_scan import processes_under
from cli.temporal_dev import dev_server_argv, temporal_binary

log = logging.getLogger("simpletuner.dev")
REPO = Path(__file__).resolve().parent.parent
LOCAL_AGENT = "local-agent"
STOP_SECONDS = 8.0
AGENT_GRACE = "3"
_WATCHED = (signal.SIGINT, signal.SIGTERM)


class Stack:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        logfile = open(self.data_dir / "logs" / f"{name}.log", "ab")
        proc = subprocess.Popen(argv, env=env, stdout=logfile, stderr=subprocess.STDOUT, cwd=os.getcwd(),
                                start_new_session=True)
        self.procs.append((name, proc))
        log.info("started %s (pid %d), log: %s", name, proc.pid, logfile.name)
        return proc

    def dead(self) -> list[tuple[str, int]]:
        return [(name, p.returncode) for name, p in self.procs if p.poll() is not None]

    def stop(self, agent_dir: Path | None = None) -> None:
        """SIGTERM to every process group at once, SIGKILL after ``STOP_SECONDS``, then any training
        process left in ``agent_dir``."""
        for _, proc in reversed(self.procs):
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0f s; killing it", name, STOP_SECONDS)
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
            _signal_group(proc, signal.SIGKILL)  # anything left in its group
            log.info("stopped %s", name)
        if agent_dir is not None:
            for pid in processes_under(agent_dir):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class ParentWatch:
    """Whether the process that started us (``make run``) was told to stop or is gone."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.caught = self._caught() if pid else set()

    def _caught(self) -> set[int] | None:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("SigCgt:"):
                    mask = int(line.split()[1], 16)
                    return {sig for sig in _WATCHED if mask & (1 << (sig - 1))}
        except (OSError, ValueError):
            return None
        return set()

    def stopped(self) -> bool:
        if not self.pid:
            return False
        now = self._caught()
        return now is None or bool(self.caught - now)  # gone, or a handler it had was reset by its signal


class Interrupted(Exception):
    """A stop signal came while the stack was starting."""


def _wait(what: str, check, stack: Stack, interrupted=lambda: False, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if interrupted():
            raise Interrupted()
        if stack.dead():
            raise RuntimeError(f"{stack.dead()[0][0]} exited while waiting for {what}; see {stack.data_dir}/logs")
        try:
            if check():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def api_env(env: dict[str, str]) -> dict[str, str]:
    """The API started here does not count the person at this machine (loopback callers) against the
    rate limits, unless SIMPLETUNER_RATE_LIMIT_BYPASS_LOOPBACK says otherwise."""
    return {"SIMPLETUNER_RATE_LIMIT_BYPASS_LOOPBACK": "true", **env}


def _local_agent_token(api: httpx.Client, data_dir: Path) -> str:
    """The local agent's token survives restarts in .data/local-agent.token (mode 0600)."""
    token_file = data_dir / "local-agent.token"
    existing = {w["name"]: w for w in api.get("/api/admin/workers").raise_for_status().json()["workers"]}
    if LOCAL_AGENT in existing and token_file.exists():
        return token_file.read_text().strip()
    if LOCAL_AGENT in existing:
        token = api.post(f"/api/admin/workers/{existing[LOCAL_AGENT]['id']}/token").raise_for_status().json()["token"]
    else:
        token = api.post("/api/admin/workers", json={"name": LOCAL_AGENT, "worker_type": "persistent",
                                                      "labels": {"host": "local"}, "local": True}
                         ).raise_for_status().json()["token"]
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token


def main(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    env.setdefault("SIMPLETUNER_DATA_DIR", ".data")
    env.setdefault("SIMPLETUNER_CONFIG_DIR", str(REPO / "examples" / "configs"))
    settings = load_settings(env)
    configure_logging(settings)
    data_dir = settings.data_dir.resolve()
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    env["SIMPLETUNER_DATA_DIR"] = str(data_dir)
    host, _, port = settings.temporal.address.rpartition(":")
    api_url = f"http://{settings.host}:{settings.port}"
    stack = Stack(data_dir)
    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    parent = ParentWatch(int(env["SIMPLETUNER_DEV_PARENT_PID"]) if env.get("SIMPLETUNER_DEV_PARENT_PID", "").isdigit()
                         else None)
    ui_port = int(env.get("SIMPLETUNER_TEMPORAL_UI_PORT") or 8233)
    agent_dir = data_dir / "agent"
    should_stop = lambda: stopping or parent.stopped()  # noqa: E731
    python = sys.executable
    try:
        namespaces = (settings.temporal.namespace, settings.temporal.gpu_namespace)
        stack.start("temporal", dev_server_argv(data_dir / "temporal.db", int(port), ui_port, ip=host or "127.0.0.1",
                                                namespaces=namespaces), env)
        _wait("Temporal", lambda: subprocess.run([temporal_binary(), "operator", "cluster", "health", "--address",
                                                  settings.temporal.address], capture_output=True).returncode == 0,
              stack, should_stop)
        stack.start("worker-host", [python, "-m", "cli.main", "worker-host"], env)
        stack.start("api", [python, "-m", "cli.main", "server"], api_env(env))
        _wait("the API", lambda: httpx.get(f"{api_url}/api/cloud/health/live", timeout=2).status_code == 200, stack,
              should_stop)
        token = settings.admin_token or (data_dir / "admin.token").read_text().strip()
        with httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as api:
            agent_token = _local_agent_token(api, data_dir)
            configs = [c["name"] for c in api.get("/api/configs").raise_for_status().json()["configs"]]
        if not args.no_agent:
            stack.start("agent", [python, "-m", "cli.main", "worker", "--orchestrator-url", api_url,
                                  "--name", LOCAL_AGENT, "--persistent", "--shutdown-grace", AGENT_GRACE,
                                  "--work-dir", str(agent_dir)], {**env, "SIMPLETUNER_WORKER_TOKEN": agent_token})
        token_hint = ("$SIMPLETUNER_ADMIN_TOKEN" if settings.admin_token else f"$(cat {data_dir / 'admin.token'})")
        sys.stdout.write(f"""
SimpleTuner control plane is up.
  API:              {api_url}   (docs: {api_url}/docs)
  Temporal Web UI:  http://{host}:{ui_port}
  Admin API key:    {'SIMPLETUNER_ADMIN_TOKEN' if settings.admin_token else data_dir / 'admin.token'}
  Configs:          {', '.join(configs) or '(none)'}
  Logs:             {data_dir / 'logs'}

Try:
  export TOKEN={token_hint}
  curl -s -X POST {api_url}/api/queue/submit -H "Authorization: Bearer $TOKEN" \\
       -H 'Content-Type: application/json' -d '{{"config_name": "tiny-numpy", "target": "auto"}}'
  curl -s {api_url}/api/cloud/jobs -H "Authorization: Bearer $TOKEN"

Ctrl-C stops everything.
""")
        sys.stdout.flush()
        while not should_stop():
            dead = stack.dead()
            if dead:
                log.error("%s exited with code %s; stopping the stack (see %s)", dead[0][0], dead[0][1],
                          data_dir / "logs")
                return 1
            time.sleep(0.25)
        return 0
    except Interrupted:
        return 0
    except RuntimeError as exc:
        log.error("%s", exc)
        return 1
    finally:
        stack.stop(agent_dir)
