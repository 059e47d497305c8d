"""Cost estimate of a training job: GPU count x estimated hours x the hardware's hourly rate.

Rates are USD per GPU-hour, keyed by a glob on the hardware type. A caller's table is consulted
before ``DEFAULT_HOURLY_RATES``. Matching is case-insensitive and the first glob in a table's
order that matches wins, so specific globs come before general ones
(``a100-80gb*`` before ``a100*``, ``l40s*`` before ``l4*``). A leading vendor/category prefix such
as ``gpu-`` or ``nvidia-`` is also tried without the prefix, so ``gpu-t4`` and ``NVIDIA A100 80GB``
find ``t4*`` and ``a100*80*``.
"""

from __future__ import annotations

import fnmatch
import math
import re
from decimal import ROUND_HALF_UP, Decimal

# Approximate on-demand list prices of the large public clouds (2024-2025), per GPU-hour; a
# deployment with negotiated prices passes its own table. "cpu" is a small CPU-only machine.
DEFAULT_HOURLY_RATES: dict[str, float] = {
    "h100*": 6.00,
    "a100-80gb*": 4.00,
    "a100*80*": 4.00,
    "a100*": 3.00,
    "l40s*": 1.90,
    "l40*": 1.50,
    "a10g*": 1.01,
    "l4*": 0.80,
    "t4*": 0.53,
    "v100*": 3.06,
    "rtx4090*": 0.70,
    "cpu": 0.20,
}

_PREFIX = re.compile(r"^(?:gpu|nvidia)[-_ :/]+", re.IGNORECASE)
_CENT = Decimal("0.01")


def _candidates(hardware_type: str) -> tuple[str, ...]:
    value = hardware_type.strip().lower()
    bare = _PREFIX.sub("", value)
    return (value, bare) if bare and bare != value else (value,)


def hourly_rate(hardware_type: str | None, hourly_rates: dict[str, float] | None = None) -> float | None:
    """The USD per GPU-hour of ``hardware_type``, or None when unknown: the first matching glob of
    ``hourly_rates`` (in its order), else the first matching glob of ``DEFAULT_HOURLY_RATES``."""
    if not hardware_type or not hardware_type.strip():
        return None
    names = _candidates(hardware_type)
    for table in (hourly_rates or {}, DEFAULT_HOURLY_RATES):
        for pattern, rate in table.items():
            glob = pattern.lower()
            if any(fnmatch.fnmatchcase(name, glob) for name in names):
                return float(rate)
    return None


def estimate_usd(hardware_type: str | None, gpu_count: int, estimated_hours: float | None,
                 hourly_rates: dict[str, float] | None = None) -> float | None:
    """Estimated cost in USD, rounded half-up to cents; None when the hours or the rate is unknown.

    ``hourly_rates`` (e.g. a deployment's negotiated prices) is consulted before the default table,
    so it overrides and extends it; ``None`` and ``{}`` both mean "defaults only". Hours that are
    negative or not finite count as unknown. A ``gpu_count`` below 1 is billed as one unit: a
    CPU-only job still occupies a machine.
    """
    if estimated_hours is None:
        return None
    hours = float(estimated_hours)
    if not math.isfinite(hours) or hours < 0:
        return None
    rate = hourly_rate(hardware_type, hourly_rates)
    if rate is None or not math.isfinite(rate):
        return None
    units = max(int(gpu_count or 0), 1)
    cost = Decimal(repr(rate)) * units * Decimal(repr(hours))
    return float(cost.quantize(_CENT, rounding=ROUND_HALF_UP))
