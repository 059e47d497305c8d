"""`simpletuner dev`: the whole stack on one machine, in the foreground, stopped by Ctrl-C.

Starts the Temporal dev server (SQLite file and Web UI), the worker host, the API and one local
GPU agent, all under the data directory (default ``.data/``). The demo config comes from
``examples/configs`` unless SIMPLETUNER_CONFIG_DIR says otherwise.
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
from cli.temporal_dev import dev_server_argv, temporal_binary

log = logging.getLogger("simpletuner.dev")
REPO = Path(__file__).resolve().parent.parent
LOCAL_AGENT = "local-agent"


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

    def stop(self) -> None:
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    log.warning("%s did not stop in 15 s; killing it", name)
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            log.info("stopped %s", name)


def _wait(what: str, check, stack: Stack, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.dead():
            raise RuntimeError(f"{stack.dead()[0][0]} exited while waiting for {what}; see {stack.data_dir}/logs")
        try:
            if check():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


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
    python = sys.executable
    try:
        namespaces = (settings.temporal.namespace, settings.temporal.gpu_namespace)
        stack.start("temporal", dev_server_argv(data_dir / "temporal.db", int(port), 8233, ip=host or "127.0.0.1",
                                                namespaces=namespaces), env)
        _wait("Temporal", lambda: subprocess.run([temporal_binary(), "operator", "cluster", "health", "--address",
                                                  settings.temporal.address], capture_output=True).returncode == 0,
              stack)
        stack.start("worker-host", [python, "-m", "cli.main", "worker-host"], env)
        stack.start("api", [python, "-m", "cli.main", "server"], env)
        _wait("the API", lambda: httpx.get(f"{api_url}/api/cloud/health/live", timeout=2).status_code == 200, stack)
        token = settings.admin_token or (data_dir / "admin.token").read_text().strip()
        with httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as api:
            agent_token = _local_agent_token(api, data_dir)
            configs = [c["name"] for c in api.get("/api/configs").raise_for_status().json()["configs"]]
        if not args.no_agent:
            stack.start("agent", [python, "-m", "cli.main", "worker", "--orchestrator-url", api_url,
                                  "--worker-token", agent_token, "--name", LOCAL_AGENT, "--persistent",
                                  "--work-dir", str(data_dir / "agent")], env)
        token_hint = ("$SIMPLETUNER_ADMIN_TOKEN" if settings.admin_token else f"$(cat {data_dir / 'admin.token'})")
        sys.stdout.write(f"""
SimpleTuner control plane is up.
  API:              {api_url}   (docs: {api_url}/docs)
  Temporal Web UI:  http://{host}:8233
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
        while not stopping:
            dead = stack.dead()
            if dead:
                log.error("%s exited with code %s; stopping the stack (see %s)", dead[0][0], dead[0][1],
                          data_dir / "logs")
                return 1
            time.sleep(0.5)
        return 0
    except RuntimeError as exc:
        log.error("%s", exc)
        return 1
    finally:
        stack.stop()
