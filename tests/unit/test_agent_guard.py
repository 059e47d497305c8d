"""The training's group guard: when the agent dies, even by SIGKILL, the whole process tree of the
training dies with it (not only its first process); its exit status is the training's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from gpu_agent.runner import GUARD
from tests.e2e.stack import pid_alive

AGENT = """
import subprocess, sys, time
sys.path.insert(0, sys.argv[2])
from gpu_agent.procgroup import die_with_agent
guard = subprocess.Popen([sys.executable, "-I", "-S", sys.argv[1], "/bin/sh", "-c",
                          "sleep 600 & echo $! > grandchild.pid; sleep 600"], start_new_session=True,
                         preexec_fn=die_with_agent)
print(guard.pid, flush=True)
time.sleep(600)
"""


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_a_killed_agent_takes_the_whole_training_tree_with_it(tmp_path: Path):
    repo = str(Path(__file__).resolve().parents[2])
    agent = subprocess.Popen([sys.executable, "-c", AGENT, str(GUARD), repo], cwd=tmp_path, stdout=subprocess.PIPE,
                             text=True)
    try:
        guard = int(agent.stdout.readline())
        pid_file = tmp_path / "grandchild.pid"
        _wait(lambda: pid_file.exists() and pid_file.read_text().strip(), 10, "the grandchild to start")
        grandchild = int(pid_file.read_text())
        assert os.getpgid(grandchild) == guard  # the training's tree is the guard's group
        agent.kill()  # SIGKILL: the agent can clean up nothing itself
        agent.wait(5)
        _wait(lambda: not pid_alive(grandchild) and not pid_alive(guard), 5, "the training's tree to die")
    finally:
        if agent.poll() is None:
            agent.kill()


def test_the_guard_exits_with_the_trainings_status(tmp_path: Path):
    done = subprocess.run([sys.executable, "-I", "-S", str(GUARD), "/bin/sh", "-c", "exit 7"], cwd=tmp_path, timeout=10)
    assert done.returncode == 7
    killed = subprocess.run([sys.executable, "-I", "-S", str(GUARD), "/bin/sh", "-c", "kill -9 $$"], cwd=tmp_path,
                            timeout=10)
    assert killed.returncode == 128 + signal.SIGKILL
    assert subprocess.run([sys.executable, "-I", "-S", str(GUARD)], timeout=10).returncode == 2
