"""The harness's own process helpers (no control-plane processes needed)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from tests.e2e.stack import Proc, Stack, StackError, processes_under, progress_percent

pytestmark = pytest.mark.e2e


def test_processes_under_finds_cwd_and_skips_zombies(tmp_path):
    job_dir = tmp_path / "agents" / "agent-1" / "job-abc" / "attempt-1"
    job_dir.mkdir(parents=True)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], cwd=job_dir,
                             start_new_session=True)
    try:
        deadline = time.monotonic() + 5
        while child.pid not in processes_under(tmp_path / "agents", must_contain="job-abc"):
            assert time.monotonic() < deadline, "the child was never found under its cwd"
            time.sleep(0.05)
        assert processes_under(tmp_path / "agents", must_contain="job-other") == []
        child.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 5
        while child.pid in processes_under(tmp_path / "agents", must_contain="job-abc"):  # zombie = gone
            assert time.monotonic() < deadline, "a killed (zombie) process still counts as running"
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()


def test_proc_kill_and_wait(tmp_path):
    proc = Proc("sleeper", [sys.executable, "-c", "print('hello', flush=True); import time; time.sleep(60)"],
                env={}, cwd=tmp_path, log_path=tmp_path / "logs" / "sleeper.log")
    assert proc.alive
    with pytest.raises(StackError, match="still running"):
        proc.wait_exit(0.2)
    proc.kill(signal.SIGKILL)
    assert proc.wait_exit(5) == -signal.SIGKILL
    assert proc.expected_exit and not proc.alive
    assert "hello" in proc.log_text()


def test_wait_for_reports_what_and_last_value(temporal, tmp_path):
    stack = Stack(temporal, tmp_path / "stack", namespace="default")
    try:
        assert stack.wait_for(lambda: 42, 1, "the answer") == 42
        with pytest.raises(AssertionError, match=r"(?s)waiting for the impossible.*last value: \{\"n\": 1\}"):
            stack.wait_for(lambda: {"n": 1}, 0.3, "the impossible", until=lambda v: v["n"] == 2)
        assert stack.env["SIMPLETUNER_ADMIN_TOKEN"].startswith("st_admin_")
        assert stack.env["HOME"] == str(stack.home)
        assert stack.env["SIMPLETUNER_TEMPORAL_ADDRESS"] == temporal.address
    finally:
        stack.stop_all()


def test_progress_percent():
    assert progress_percent({"percent": 100.0}) == 100.0
    assert progress_percent({"step": 5, "total_steps": 10}) == 50.0
    assert progress_percent(None) is None
