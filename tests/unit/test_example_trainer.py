"""examples/train_tiny.py: a real (tiny) numpy training run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
TRAIN_TINY = ROOT / "examples" / "train_tiny.py"
CONFIG = ROOT / "examples" / "configs" / "tiny-numpy.json"


def run_trainer(tmp_path: Path, args: dict, use_env: bool = True) -> tuple[subprocess.CompletedProcess, Path]:
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(args))
    output_dir = tmp_path / "output"
    env = {**os.environ, "SIMPLETUNER_OUTPUT_DIR": str(output_dir)}
    argv = [sys.executable, str(TRAIN_TINY)]
    if use_env:
        env["SIMPLETUNER_CONFIG_PATH"] = str(config_path)
    else:
        argv += ["--config", str(config_path)]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    return result, output_dir


def progress_lines(stdout: str) -> list[dict]:
    prefix = "SIMPLETUNER_PROGRESS "
    return [json.loads(line[len(prefix):]) for line in stdout.splitlines() if line.startswith(prefix)]


def test_example_config_shape():
    config = json.loads(CONFIG.read_text())
    assert config["name"] == "tiny-numpy"
    assert config["command"] == ["{python}", "{config_dir}/../train_tiny.py"]
    assert config["gpu_count"] == 1 and config["hardware_type"] == "cpu" and config["env"] == {}
    assert (CONFIG.parent / ".." / "train_tiny.py").resolve() == TRAIN_TINY


def test_defaults_train_fast_and_loss_decreases(tmp_path):
    started = time.monotonic()
    result, out = run_trainer(tmp_path, json.loads(CONFIG.read_text())["args"])
    assert time.monotonic() - started < 5
    assert result.returncode == 0, result.stderr
    progress = progress_lines(result.stdout)
    assert [p["step"] for p in progress] == list(range(1, 201))
    assert progress[-1]["percent"] == 100.0 and progress[-1]["total_steps"] == 200
    losses = [p["loss"] for p in progress]
    assert losses[-1] < 0.5 * losses[0]
    assert np.mean(losses[-20:]) < np.mean(losses[20:40])  # still improving late in training
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["final_loss"] < metrics["initial_loss"]
    assert metrics["accuracy"] > 0.85
    checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert checkpoints == ["step-00050.npz", "step-00100.npz", "step-00150.npz", "step-00200.npz"]
    model = np.load(out / "model.npz")
    assert set(model.files) == {"W1", "b1", "W2", "b2"}
    assert int(np.load(out / "checkpoints" / "step-00100.npz")["step"]) == 100


def test_seeded_runs_are_reproducible(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, _ = run_trainer(tmp_path / "a", {"steps": 20, "seed": 7})
    second, _ = run_trainer(tmp_path / "b", {"steps": 20, "seed": 7}, use_env=False)
    assert progress_lines(first.stdout) == progress_lines(second.stdout)


def test_fail_at_step_exits_with_code_3(tmp_path):
    result, out = run_trainer(tmp_path, {"steps": 50, "fail_at_step": 5})
    assert result.returncode == 3
    assert [p["step"] for p in progress_lines(result.stdout)] == [1, 2, 3, 4]
    assert "simulated failure at step 5" in result.stderr
    assert not (out / "model.npz").exists()


def test_sigterm_stops_promptly(tmp_path):
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps({"steps": 100000, "step_delay_seconds": 0.05}))
    env = {**os.environ, "SIMPLETUNER_CONFIG_PATH": str(config_path), "SIMPLETUNER_OUTPUT_DIR": str(tmp_path / "o")}
    proc = subprocess.Popen([sys.executable, str(TRAIN_TINY)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:  # blocks until the first progress line: training is under way
            if line.startswith("SIMPLETUNER_PROGRESS"):
                break
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 128 + signal.SIGTERM
        assert time.monotonic() - started < 2
    finally:
        proc.kill()
        proc.wait()
