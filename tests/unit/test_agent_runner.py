"""The training-process runner: job directory, placeholders, env, output capture, kill."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import pytest

from gpu_agent.runner import TrainingProcess, build_env, parse_progress, prepare_job_dir, substitute
from tests.helpers import group_gone, wait_until

TRAIN_TINY = Path(__file__).resolve().parents[2] / "examples" / "train_tiny.py"



def make_process(tmp_path: Path, command: list[str], args: dict | None = None, job_id: str = "job-test",
                 config_env: dict | None = None):
    paths = prepare_job_dir(tmp_path, job_id, 1, args or {})
    lines: list[str] = []
    progress: list[dict] = []
    proc = TrainingProcess(substitute(command, paths), build_env(config_env or {}, job_id, 1, paths), paths,
                           on_line=lines.append, on_progress=progress.append)
    return proc, paths, lines, progress


# ---- pure helpers -------------------------------------------------------------------------------

def test_parse_progress():
    assert parse_progress('SIMPLETUNER_PROGRESS {"step": 5, "total_steps": 10, "loss": 0.5, "percent": 50}') == \
        {"step": 5, "total_steps": 10, "loss": 0.5, "percent": 50}
    assert parse_progress('  SIMPLETUNER_PROGRESS {"step": 1, "total_steps": 4}\r') == \
        {"step": 1, "total_steps": 4, "percent": 25.0}
    assert parse_progress("step 5 loss 0.5") is None
    assert parse_progress("SIMPLETUNER_PROGRESS not json") is None
    assert parse_progress("SIMPLETUNER_PROGRESS [1, 2]") is None


def test_prepare_job_dir_is_fresh(tmp_path):
    paths = prepare_job_dir(tmp_path, "job-1", 2, {"steps": 3})
    assert paths.job_dir == (tmp_path / "job-1" / "attempt-2").resolve()
    assert json.loads(paths.config_path.read_text()) == {"steps": 3}
    (paths.output_dir / "stale.bin").write_bytes(b"old")
    again = prepare_job_dir(tmp_path, "job-1", 2, {"steps": 4})
    assert again.output_dir.is_dir() and not any(again.output_dir.iterdir())
    assert json.loads(again.config_path.read_text()) == {"steps": 4}


def test_substitute_and_env(tmp_path):
    paths = prepare_job_dir(tmp_path, "job-1", 1, {})
    argv = substitute(["{python}", "train.py", "--config={config_path}", "{output_dir}", "{job_dir}/x", "{other}"],
                      paths)
    assert argv == [sys.executable, "train.py", f"--config={paths.config_path}", str(paths.output_dir),
                    f"{paths.job_dir}/x", "{other}"]
    env = build_env({"FOO": "bar", "SIMPLETUNER_JOB_ID": "spoofed"}, "job-1", 1, paths,
                    base={"PATH": "/bin", "SIMPLETUNER_WORKER_TOKEN": "secret"})
    assert env["FOO"] == "bar" and env["PATH"] == "/bin"
    assert "SIMPLETUNER_WORKER_TOKEN" not in env
    assert env["SIMPLETUNER_JOB_ID"] == "job-1" and env["SIMPLETUNER_ATTEMPT"] == "1"
    assert env["SIMPLETUNER_CONFIG_PATH"] == str(paths.config_path)
    assert env["SIMPLETUNER_OUTPUT_DIR"] == str(paths.output_dir)
    assert env["SIMPLETUNER_JOB_DIR"] == str(paths.job_dir)


# ---- real processes -------------------------------------------------------------------------------

async def test_runs_the_example_trainer_for_real(tmp_path):
    proc, paths, lines, progress = make_process(
        tmp_path, ["{python}", str(TRAIN_TINY)], {"steps": 30, "checkpoint_every": 10, "seed": 1})
    await proc.start()
    assert await proc.wait() == 0
    assert proc.returncode == 0
    outputs = sorted(p.relative_to(paths.output_dir).as_posix() for p in paths.output_dir.rglob("*") if p.is_file())
    assert outputs == ["checkpoints/step-00010.npz", "checkpoints/step-00020.npz", "checkpoints/step-00030.npz",
                       "metrics.json", "model.npz"]
    assert [p["step"] for p in progress] == list(range(1, 31))
    assert progress[-1]["percent"] == 100.0 and progress[-1]["total_steps"] == 30
    assert proc.latest_progress == progress[-1]
    assert any(line.startswith("done: loss") for line in lines)
    assert paths.log_path.read_text().splitlines() == lines
    assert group_gone(proc.pgid)


async def test_merges_stderr_splits_carriage_returns_and_reports_exit_code(tmp_path):
    script = ("import sys; print('out', flush=True); print('err', file=sys.stderr, flush=True); "
              "sys.stdout.write('a\\rb\\r\\nc\\nno-newline'); sys.stdout.flush(); sys.exit(7)")
    proc, _, lines, _ = make_process(tmp_path, ["{python}", "-c", script])
    await proc.start()
    assert await proc.wait() == 7
    assert lines == ["out", "err", "a", "b", "c", "no-newline"]
    assert list(proc.tail) == lines


async def test_missing_executable_raises_oserror(tmp_path):
    proc, _, _, _ = make_process(tmp_path, ["/nonexistent/trainer"])
    with pytest.raises(OSError):
        await proc.start()


CHILD_WITH_GRANDCHILD = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
grandchild = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              "print('grandchild up', flush=True); time.sleep(120)")
subprocess.Popen([sys.executable, "-c", grandchild])
print('child up', flush=True)
time.sleep(120)
"""


async def test_kill_removes_term_ignoring_child_and_grandchild_within_3s(tmp_path):
    proc, _, lines, _ = make_process(tmp_path, ["{python}", "-c", CHILD_WITH_GRANDCHILD])
    await proc.start()
    await wait_until(lambda: {"child up", "grandchild up"} <= set(lines), what="both processes to start")
    pgid = proc.pgid
    started = time.monotonic()
    await proc.kill()
    elapsed = time.monotonic() - started
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    assert elapsed < 3.0
    assert proc.returncode in (-9, 128 + 9)  # SIGKILLed: the guard itself, or the training as the guard reports it


async def test_kill_is_quick_when_sigterm_is_honoured(tmp_path):
    proc, _, lines, _ = make_process(tmp_path, ["{python}", str(TRAIN_TINY)],
                                     {"steps": 100000, "step_delay_seconds": 0.05})
    await proc.start()
    await wait_until(lambda: any(line.startswith("SIMPLETUNER_PROGRESS") for line in lines), what="progress")
    started = time.monotonic()
    await proc.kill()
    assert time.monotonic() - started < 1.5
    assert group_gone(proc.pgid)
    assert proc.returncode == 143
    assert "received SIGTERM: stopping" in lines
    await proc.kill()  # idempotent


async def test_wait_cleans_up_a_lingering_grandchild(tmp_path):
    script = ("import subprocess, sys; subprocess.Popen([sys.executable, '-c', "
              "\"print('grandchild up', flush=True); import time; time.sleep(120)\"]); print('bye', flush=True)")
    proc, _, lines, _ = make_process(tmp_path, ["{python}", "-c", script])
    await proc.start()
    started = time.monotonic()
    assert await asyncio.wait_for(proc.wait(), timeout=10) == 0
    assert time.monotonic() - started < 5
    assert group_gone(proc.pgid)
    assert "bye" in lines
