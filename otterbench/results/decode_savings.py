"""Decode-only savings: the share of a separate arm's extra per-token decode time (TPOT) that Otter saves, and
its prefill counterpart from the time to first token (TTFT).

Total time mixes prefill (the prompt, once per batch) with decode; TPOT isolates the steady per-token cost
an inference engine pays. Statistics on independent units: each measured repeat gives one aggregate, the
median TPOT of its steps; the saving is computed from the median of those per-repeat medians, the statistic
its CI bootstraps over them (so the interval is about the figure shown beside it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from otterbench.results.stats import bootstrap_saved_ci
from otterbench.saving import saved_pct


def tpot_per_repeat(arm: dict[str, Any] | None) -> list[float] | None:
    """The median TPOT of each measured repeat (the steps of one repeat are consecutive samples)."""
    if arm is None or arm.get("status") != "ok" or not arm.get("latency"):
        return None
    samples, repeats = arm["latency"]["tpot_s"]["samples"], arm["latency"]["total_s"]["n"]
    if not samples or not repeats or len(samples) % repeats:
        return None
    steps = len(samples) // repeats
    return [float(np.median(samples[i * steps : (i + 1) * steps])) for i in range(repeats)]


def decode_saving(
    base: dict[str, Any] | None,
    separate: dict[str, Any],
    otter: dict[str, Any] | None,
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    """`extra_decode_time_saved_pct` (from each arm's median over repeats of its per-repeat median TPOT) and
    its CI95 over repeats, or a note."""
    arms = (base, separate, otter)
    per_repeat = [tpot_per_repeat(arm) for arm in arms]
    if any(samples is None for samples in per_repeat):
        return {
            "extra_decode_time_saved_pct": None,
            "extra_decode_time_saved_ci95": None,
            "decode_note": "decode time: an arm of base/separate/otter has no per-token samples",
        }
    pct = saved_pct(*(float(np.median(samples)) for samples in per_repeat))
    ci = bootstrap_saved_ci(*per_repeat, n_boot=n_boot, seed=seed) if pct is not None else None
    note = None if pct is not None else "decode time: the separate arm's TPOT is not above base's"
    return {
        "extra_decode_time_saved_pct": pct,
        "extra_decode_time_saved_ci95": list(ci) if ci else None,
        "decode_note": note,
    }


def prefill_saving(
    base: dict[str, Any] | None, separate: dict[str, Any], otter: dict[str, Any] | None
) -> dict:
    """`extra_prefill_time_saved_pct` from TTFT p50 of base, separate and Otter arms (None if one is missing)."""
    medians = [
        ((arm or {}).get("latency") or {}).get("ttft_s", {}).get("median") for arm in (base, separate, otter)
    ]
    ok = all(arm is not None and arm.get("status") == "ok" for arm in (base, separate, otter))
    return {"extra_prefill_time_saved_pct": saved_pct(*medians) if ok and None not in medians else None}
