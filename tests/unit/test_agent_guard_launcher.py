"""The guard started ahead of time: the next training runs in it (its pid, its group), with the
environment and directory the launch names and nothing of the agent's; it is replaced after each
launch, ends quietly on close, and a dead spare falls back to a guard started for the command."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

from gpu_agent.guard_launcher import GuardLauncher
from tests.e2e.stack import pid_alive
from tests.helpers import wait_until

PRINT_ENV = ["/bin/sh", "-c", 'echo "$PWD $SECRET_FOR_JOB ${AGENT_ONLY:-unset} $(ps -o pgid= -p $$)"; exit 3']


async def _run(launcher: GuardLauncher, cwd: Path) -> tuple[asyncio.subprocess.Process, list[str]]:
    proc = await launcher.launch(PRINT_ENV, cwd, {"PATH": os.environ["PATH"], "SECRET_FOR_JOB": "s3"})
    out = (await asyncio.wait_for(proc.stdout.read(), 10)).decode().split()
    await asyncio.wait_for(proc.wait(), 10)
    return proc, out


async def test_a_launch_runs_in_the_spare_and_a_new_spare_is_made(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("AGENT_ONLY", "agent-secret")
    launcher = GuardLauncher()
    await launcher.keep_spare()
    try:
        first = launcher._spare
        assert first is not None
        assert "AGENT_ONLY" not in Path(f"/proc/{first.pid}/environ").read_bytes().decode(errors="replace")
        proc, out = await _run(launcher, tmp_path)
        assert proc is first and proc.returncode == 3  # the training's status, through its guard
        assert out == [str(tmp_path), "s3", "unset", str(first.pid)]  # its cwd and env, the guard's group
        await asyncio.wait_for(launcher._refill, 10)
        second = launcher._spare
        assert second is not None and second.pid != first.pid and second.returncode is None
    finally:
        await launcher.close()
    await wait_until(lambda: second.returncode is not None, 10, "the spare to end on close")
    assert second.returncode == 0 and not pid_alive(second.pid)


async def test_a_dead_spare_falls_back_to_a_fresh_guard(tmp_path: Path):
    launcher = GuardLauncher()
    await launcher.keep_spare()
    try:
        spare = launcher._spare
        os.kill(spare.pid, signal.SIGKILL)
        await asyncio.wait_for(spare.wait(), 10)
        proc, out = await _run(launcher, tmp_path)
        assert proc is not spare and proc.returncode == 3 and out[:2] == [str(tmp_path), "s3"]
    finally:
        await launcher.close()


async def test_without_a_spare_each_launch_starts_its_guard(tmp_path: Path):
    launcher = GuardLauncher()
    proc, out = await _run(launcher, tmp_path)
    assert proc.returncode == 3 and out[-1] == str(proc.pid) and launcher._spare is None


async def test_a_waiting_guard_refuses_a_malformed_command(tmp_path: Path):
    launcher = GuardLauncher()
    await launcher.keep_spare()
    spare, launcher._spare = launcher._spare, None
    try:
        spare.stdin.write(json.dumps({"argv": ["true"], "env": {}, "cwd": str(tmp_path / "missing")}).encode() + b"\n")
        spare.stdin.close()
        assert await asyncio.wait_for(spare.wait(), 10) == 127
        assert b"cannot start the training" in await spare.stdout.read()
    finally:
        await launcher.close()
