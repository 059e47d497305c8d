"""Hardware detection: what the agent reports in its register call.

``nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits`` prints one line per
GPU (``NVIDIA A100-SXM4-80GB, 81920``; memory in MiB). Without a working ``nvidia-smi`` the
agent falls back to one CPU "slot" so single-GPU jobs can still run on a dev machine. The GPU name
is also reported as a normalised hardware type (``a100-80gb``, ``h200``, ``cpu``, ...), which
placement, resource rules and the actual cost use.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable
from typing import Any

from workflows.contracts import normalize_hardware_type

log = logging.getLogger(__name__)

NVIDIA_SMI_ARGV = ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"]
CPU_FALLBACK: dict[str, Any] = {"gpu_count": 1, "gpu_name": "CPU", "gpu_vram_gb": None, "accelerator_type": "cpu",
                                "hardware_type": "cpu"}


def parse_nvidia_smi(output: str) -> dict[str, Any] | None:
    """Hardware dict from nvidia-smi's CSV output, or None when it lists no GPU.

    VRAM is the first GPU's ``memory.total`` converted from MiB to GB (1 decimal); an
    unparsable memory column gives ``None`` rather than failing detection.
    """
    rows = [line.strip() for line in output.splitlines() if line.strip()]
    if not rows:
        return None
    name, _, memory = rows[0].rpartition(",")
    if not name:  # a single column: no comma at all
        name, memory = memory, ""
    try:
        vram_gb: float | None = round(float(memory.strip()) / 1024.0, 1)
    except ValueError:
        vram_gb = None
    gpu_name = name.strip() or "unknown GPU"
    return {"gpu_count": len(rows), "gpu_name": gpu_name, "gpu_vram_gb": vram_gb, "accelerator_type": "cuda",
            "hardware_type": normalize_hardware_type(gpu_name, "cuda")}


def detect_hardware(gpu_count_override: int | None = None,
                    run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
                    hardware_type_override: str | None = None) -> dict[str, Any]:
    """Detect GPUs (or the CPU fallback); the overrides replace the detected count and hardware type."""
    hardware: dict[str, Any] | None = None
    try:
        result = run(NVIDIA_SMI_ARGV, capture_output=True, text=True, timeout=20, check=False)
        if result.returncode == 0:
            hardware = parse_nvidia_smi(result.stdout)
        else:
            log.info("nvidia-smi exited with code %s: %s", result.returncode, (result.stderr or "").strip()[:200])
    except (OSError, subprocess.SubprocessError) as exc:
        log.info("nvidia-smi unavailable (%s)", exc)
    if hardware is None:
        log.info("no NVIDIA GPU detected: using the CPU fallback (one compute slot)")
        hardware = dict(CPU_FALLBACK)
    if gpu_count_override is not None:
        hardware["gpu_count"] = int(gpu_count_override)
    if hardware_type_override:
        hardware["hardware_type"] = hardware_type_override
    return hardware
