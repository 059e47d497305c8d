"""Pools, label selectors and hardware types: how a job's wishes are matched to GPU agents. Pure functions.

A pool is the set of agents with identical labels, GPU count, locality and hardware type; it has one
task queue. Hardware types are normalised names such as ``a100-80gb``, ``h200``, ``rtx4090`` or
``cpu``, derived from what the GPUs call themselves; configs and resource rules name them with globs
(``a100*``, ``*-80gb``), with or without a ``gpu-``/``nvidia-`` prefix.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re

CPU = "cpu"
_VENDOR_WORDS = re.compile(r"\b(nvidia|geforce|tesla|quadro|amd|radeon|instinct|graphics|corporation)\b")
_MODEL = re.compile(r"\b(rtx\s?a?\d{4}|gtx\s?\d{3,4}|mi\d{3}x?|[a-z]{1,2}\d{1,4}[a-z]?)\b")
_MEMORY = re.compile(r"(\d{2,3})\s?gb\b")
_PREFIX = re.compile(r"^(?:gpu|nvidia)[-_ :/]+")


def normalize_hardware_type(gpu_name: str | None, accelerator_type: str | None = None) -> str:
    """``NVIDIA A100-SXM4-80GB`` → ``a100-80gb``, ``NVIDIA H200`` → ``h200``, ``NVIDIA GeForce RTX 4090``
    → ``rtx4090``, ``Tesla T4`` → ``t4``; the CPU fallback (or no name) → ``cpu``."""
    if (accelerator_type or "").lower() == CPU or not gpu_name or gpu_name.strip().lower() == CPU:
        return CPU
    text = _VENDOR_WORDS.sub(" ", gpu_name.lower())
    model = _MODEL.search(text)
    if model is None:
        slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
        return slug[:64] or "unknown"
    name = model.group(1).replace(" ", "")
    memory = _MEMORY.search(text)
    return f"{name}-{memory.group(1)}gb" if memory else name


def _bare(value: str) -> str:
    value = value.strip().lower()
    return _PREFIX.sub("", value) or value


def hardware_matches(pattern: str, hardware_type: str) -> bool:
    """Case-insensitive glob of a config or rule (``a100*``, ``gpu-t4*``, ``*-80gb``) on a hardware type."""
    return fnmatch.fnmatchcase(_bare(hardware_type), _bare(pattern))


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Every selector key must be present; values are glob patterns (``a100*``)."""
    return all(key in labels and fnmatch.fnmatchcase(labels[key], pattern) for key, pattern in selector.items())


def pool_task_queue(labels: dict[str, str], gpu_count: int, local: bool, hardware_type: str | None = None) -> str:
    """Agents with identical labels, GPU count, locality and hardware type share one task queue."""
    fields: dict = {"labels": dict(sorted(labels.items())), "gpu_count": gpu_count, "local": local}
    if hardware_type is not None:
        fields["hardware_type"] = hardware_type
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return "gpu." + hashlib.sha256(canonical.encode()).hexdigest()[:16]
