"""Job cost estimates: GPUs x hours x the first matching hourly rate."""

from __future__ import annotations

import math

import pytest

from activities.governance.cost import DEFAULT_HOURLY_RATES, estimate_usd, hourly_rate


@pytest.mark.parametrize("hardware, pattern", [
    ("h100", "h100*"), ("H100-SXM5-80GB", "h100*"),
    ("a100-80gb", "a100-80gb*"), ("A100-SXM4-80GB", "a100*80*"), ("a100", "a100*"), ("a100-40gb", "a100*"),
    ("l40s", "l40s*"), ("l40", "l40*"), ("a10g", "a10g*"), ("l4", "l4*"), ("t4", "t4*"), ("T4", "t4*"),
    ("rtx4090", "rtx4090*"), ("cpu", "cpu"), ("CPU", "cpu"),
    ("gpu-t4", "t4*"), ("gpu-a100-80gb", "a100-80gb*"), ("NVIDIA A100 80GB PCIe", "a100*80*"),
])
def test_default_table_picks_the_specific_rate(hardware, pattern):
    assert hourly_rate(hardware) == DEFAULT_HOURLY_RATES[pattern]


def test_specific_globs_come_before_general_ones():
    assert DEFAULT_HOURLY_RATES["a100-80gb*"] > DEFAULT_HOURLY_RATES["a100*"]
    assert hourly_rate("l40s") != hourly_rate("l4")
    assert all(rate > 0 for rate in DEFAULT_HOURLY_RATES.values())


def test_estimate_is_gpus_times_hours_times_rate_rounded_to_cents():
    assert estimate_usd("a10g", 2, 3.0) == round(2 * 3 * DEFAULT_HOURLY_RATES["a10g*"], 2)
    assert estimate_usd("t4", 1, 1 / 3) == 0.18  # 0.53 / 3 = 0.17666...
    assert estimate_usd("x", 1, 1.0, {"x": 0.125}) == 0.13  # half-up, not banker's rounding
    assert estimate_usd("h100", 8, 0.0) == 0.0


def test_unknown_hours_or_hardware_give_none():
    assert estimate_usd("h100", 1, None) is None
    assert estimate_usd(None, 1, 2.0) is None
    assert estimate_usd("", 1, 2.0) is None
    assert estimate_usd("tpu-v5", 1, 2.0) is None
    assert estimate_usd("h100", 1, -1.0) is None
    assert estimate_usd("h100", 1, math.nan) is None
    assert estimate_usd("h100", 1, math.inf) is None


def test_gpu_count_below_one_is_one_unit():
    assert estimate_usd("cpu", 0, 10.0) == estimate_usd("cpu", 1, 10.0) == round(10 * DEFAULT_HOURLY_RATES["cpu"], 2)


def test_custom_rates_come_first_and_the_defaults_still_apply():
    rates = {"A100*": 1.0, "a100-80gb*": 9.0, "test-gpu*": 100.0}
    assert estimate_usd("a100-80gb", 1, 1.0, rates) == 1.0  # first glob in dict order, case-insensitive
    assert estimate_usd("test-gpu", 1, 1.0, rates) == 100.0
    assert estimate_usd("h100", 2, 1.0, rates) == 2 * DEFAULT_HOURLY_RATES["h100*"]  # not in the custom table
    assert estimate_usd("h100", 1, 1.0, {"*": 0.5}) == 0.5  # a custom catch-all shadows the defaults
    assert estimate_usd("h100", 1, 1.0, {}) == estimate_usd("h100", 1, 1.0) == DEFAULT_HOURLY_RATES["h100*"]
    assert estimate_usd("tpu-v5", 1, 1.0, {"a*": 1.0}) is None
