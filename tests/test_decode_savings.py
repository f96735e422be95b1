"""Decode-only savings: one median TPOT per repeat, saved share from TPOT p50, CI from the shared bootstrap."""

from __future__ import annotations

import numpy as np

from otterbench.results.decode_savings import decode_saving, tpot_per_repeat
from otterbench.results.stats import summarize
from otterbench.saving import saved_pct


def _arm(steps_per_repeat: list[list[float]]) -> dict:
    samples = [value for steps in steps_per_repeat for value in steps]
    totals = [sum(steps) for steps in steps_per_repeat]
    return {"status": "ok", "latency": {"tpot_s": summarize(samples), "total_s": summarize(totals)}}


def test_one_aggregate_per_repeat() -> None:
    arm = _arm([[1.0, 2.0, 9.0], [3.0, 4.0, 5.0]])
    assert tpot_per_repeat(arm) == [2.0, 4.0]
    assert tpot_per_repeat({"status": "failed", "latency": None}) is None


def test_decode_saving_uses_tpot_medians() -> None:
    rng = np.random.default_rng(0)
    base = _arm([list(1.0 + 0.01 * rng.random(4)) for _ in range(3)])
    separate = _arm([list(3.0 + 0.01 * rng.random(4)) for _ in range(3)])
    otter = _arm([list(1.1 + 0.01 * rng.random(4)) for _ in range(3)])
    entry = decode_saving(base, separate, otter, n_boot=200, seed=0)
    medians = [arm["latency"]["tpot_s"]["median"] for arm in (base, separate, otter)]
    assert entry["extra_decode_time_saved_pct"] == saved_pct(*medians)
    low, high = entry["extra_decode_time_saved_ci95"]
    assert low <= entry["extra_decode_time_saved_pct"] <= high and entry["decode_note"] is None
