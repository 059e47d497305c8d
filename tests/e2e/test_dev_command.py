"""``make run`` and ``simpletuner dev``: a stop signal ends every process they started, the training
included, within 10 s; the local agent's token is in no command line."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from cli.proc_scan import pid_alive, processes_under
from tests.e2e.temporal_server import REPO_ROOT
from tests.ports import free_port

pytestmark = pytest.mark.e2e
STOP_DEADLINE = 10.0


def descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class DevRun:
    def __init__(self, argv: list[str], root: Path) -> None:
        self.data_dir = root / "data"
        config = root / "enterprise.yaml"
        config.write_text("# settings come from the environment\n")
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIMPLETUNER_")}
        env.update({"SIMPLETUNER_DATA_DIR": str(self.data_dir), "SIMPLETUNER_PORT": str(self.port),
                    "SIMPLETUNER_HOST": "127.0.0.1", "SIMPLETUNER_ENTERPRISE_CONFIG": str(config),
                    "SIMPLETUNER_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
                    "SIMPLETUNER_TEMPORAL_UI_PORT": str(free_port()), "NO_PROXY": "127.0.0.1"})
        self.output: list[str] = []
        self.proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.output.append(line)

    def wait_up(self) -> httpx.Client:
        wait_until(lambda: any("control plane is up" in line for line in self.output) or self.proc.poll() is not None,
                   180, "the stack to come up")
        assert self.proc.poll() is None, "".join(self.output[-40:])
        token = (self.data_dir / "admin.token").read_text().strip()
        return httpx.Client(base_url=f"http://127.0.0.1:{self.port}", trust_env=False, timeout=15,
                            headers={"Authorization": f"Bearer {token}"})

    def kill_all(self) -> None:
        for pid in descendants(self.proc.pid) | {self.proc.pid}:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def check_stops(run: DevRun, sig: int) -> None:
    api = run.wait_up()
    try:
        agent_token = (run.data_dir / "local-agent.token").read_text().strip()
        assert stat.S_IMODE((run.data_dir / "local-agent.token").stat().st_mode) == 0o600
        started = descendants(run.proc.pid)
        agents = [p for p in started if "worker" in cmdline(p) and "--orchestrator-url" in cmdline(p)]
        assert len(agents) == 1, [cmdline(p) for p in started]
        assert not any(agent_token in " ".join(cmdline(p)) for p in started | {run.proc.pid})
        environ = Path(f"/proc/{agents[0]}/environ").read_bytes().split(b"\0")
        assert f"SIMPLETUNER_WORKER_TOKEN={agent_token}".encode() in environ

        assert api.put("/api/configs/long", json={"command": ["/bin/sh", "-c", "sleep 300"], "gpu_count": 1}
                       ).status_code in (200, 201)
        job = api.post("/api/queue/submit", json={"config_name": "long", "target": "local"}).json()["job_id"]
        wait_until(lambda: api.get(f"/api/cloud/jobs/{job}").json()["status"] == "running", 60, "the job to run")
        training = wait_until(lambda: processes_under(run.data_dir / "agent", must_contain=job), 30, "its process")
        everything = descendants(run.proc.pid) | set(training) | {run.proc.pid}
    finally:
        api.close()

    os.kill(run.proc.pid, sig)
    wait_until(lambda: run.proc.poll() is not None and not [p for p in everything if pid_alive(p)], STOP_DEADLINE,
               f"every process to stop after {signal.Signals(sig).name}: "
               f"{[(p, cmdline(p)[:4]) for p in everything if pid_alive(p)]}")


@pytest.mark.slow  # a long scenario: make slow (CI runs it after make test)
def test_sigint_to_make_run_stops_everything(tmp_path):
    """make does not pass SIGINT on to its recipe (SIGTERM it does): the hard case."""
    run = DevRun(["make", "--no-print-directory", "run"], tmp_path)
    try:
        check_stops(run, signal.SIGINT)
    finally:
        run.kill_all()


@pytest.mark.slow  # a long scenario: make slow (CI runs it after make test)
def test_sigterm_to_simpletuner_dev_stops_everything(tmp_path):
    run = DevRun([str(REPO_ROOT / ".venv" / "bin" / "simpletuner"), "dev"], tmp_path)
    try:
        check_stops(run, signal.SIGTERM)
    finally:
        run.kill_all()
