#!/usr/bin/env python3
"""A tiny but real training job: a 2-layer MLP learning "two moons" with numpy.

Config: JSON args from ``--config PATH`` or ``$SIMPLETUNER_CONFIG_PATH`` (all optional):
``steps`` (200), ``learning_rate`` (0.5), ``seed`` (0), ``checkpoint_every`` (50),
``step_delay_seconds`` (0, keeps the job running for tests), ``fail_at_step`` (exit code 3
there), ``hidden_size`` (16), ``n_samples`` (512).

Writes into ``$SIMPLETUNER_OUTPUT_DIR`` (or ``--output-dir``, default ./output):
``checkpoints/step-XXXXX.npz``, ``model.npz`` and ``metrics.json``. Reports progress as
``SIMPLETUNER_PROGRESS {"step", "total_steps", "loss", "percent"}`` lines on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

DEFAULTS = {"steps": 200, "learning_rate": 0.5, "seed": 0, "checkpoint_every": 50, "step_delay_seconds": 0.0,
            "fail_at_step": None, "hidden_size": 16, "n_samples": 512}


def make_moons(n: int, rng: np.random.Generator, noise: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    half = n // 2
    t_outer = rng.uniform(0, np.pi, half)
    t_inner = rng.uniform(0, np.pi, n - half)
    outer = np.stack([np.cos(t_outer), np.sin(t_outer)], axis=1)
    inner = np.stack([1 - np.cos(t_inner), 0.5 - np.sin(t_inner)], axis=1)
    x = np.concatenate([outer, inner]) + rng.normal(0, noise, (n, 2))
    y = np.concatenate([np.zeros(half), np.ones(n - half)])
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return x, y


def init_params(hidden: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"W1": rng.normal(0, 1.0, (2, hidden)), "b1": np.zeros(hidden),
            "W2": rng.normal(0, 1.0 / np.sqrt(hidden), (hidden, 1)), "b2": np.zeros(1)}


def forward(params: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = np.tanh(x @ params["W1"] + params["b1"])
    logits = (h @ params["W2"] + params["b2"]).ravel()
    return h, 1.0 / (1.0 + np.exp(-logits))


def loss_and_grads(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray):
    h, p = forward(params, x)
    eps = 1e-9
    loss = float(-np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)))
    d_logits = ((p - y) / len(y))[:, None]
    d_h = (d_logits @ params["W2"].T) * (1 - h ** 2)
    grads = {"W2": h.T @ d_logits, "b2": d_logits.sum(axis=0), "W1": x.T @ d_h, "b1": d_h.sum(axis=0)}
    return loss, grads


def accuracy(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((forward(params, x)[1] >= 0.5) == (y >= 0.5)))


def load_args(config_path: str | None) -> dict:
    args = dict(DEFAULTS)
    if config_path:
        args.update(json.loads(Path(config_path).read_text()) or {})
    return args


def progress(step: int, total: int, loss: float) -> None:
    payload = {"step": step, "total_steps": total, "loss": round(loss, 6), "percent": round(100.0 * step / total, 2)}
    print("SIMPLETUNER_PROGRESS " + json.dumps(payload), flush=True)


def train(args: dict, output_dir: Path) -> dict:
    steps, lr = int(args["steps"]), float(args["learning_rate"])
    every, delay = int(args["checkpoint_every"] or 0), float(args["step_delay_seconds"] or 0)
    fail_at = args.get("fail_at_step")
    rng = np.random.default_rng(int(args["seed"]))
    x, y = make_moons(int(args["n_samples"]), rng)
    params = init_params(int(args["hidden_size"]), rng)
    (output_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    initial_loss, _ = loss_and_grads(params, x, y)
    print(f"training a 2-layer MLP on {len(y)} samples for {steps} steps (lr={lr})", flush=True)
    loss = initial_loss
    for step in range(1, steps + 1):
        if fail_at is not None and step == int(fail_at):
            print(f"simulated failure at step {step}", file=sys.stderr, flush=True)
            sys.exit(3)
        loss, grads = loss_and_grads(params, x, y)
        for key in params:
            params[key] -= lr * grads[key]
        progress(step, steps, loss)
        if step % 20 == 0 or step == steps:
            print(f"step {step}/{steps} loss={loss:.4f}", flush=True)
        if every and step % every == 0:
            np.savez(output_dir / "checkpoints" / f"step-{step:05d}.npz", step=step, **params)
        if delay:
            time.sleep(delay)
    final_loss, _ = loss_and_grads(params, x, y)
    metrics = {"initial_loss": initial_loss, "final_loss": final_loss, "accuracy": accuracy(params, x, y),
               "steps": steps, "seed": int(args["seed"])}
    np.savez(output_dir / "model.npz", **params)
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(f"done: loss {initial_loss:.4f} -> {final_loss:.4f}, accuracy {metrics['accuracy']:.3f}", flush=True)
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=os.environ.get("SIMPLETUNER_CONFIG_PATH"))
    parser.add_argument("--output-dir", default=os.environ.get("SIMPLETUNER_OUTPUT_DIR", "output"))
    ns = parser.parse_args(argv)

    def on_sigterm(signum, frame):
        print("received SIGTERM: stopping", flush=True)
        sys.exit(128 + signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)
    train(load_args(ns.config), Path(ns.output_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
