"""Statistics over measured repeats: summaries, the extra-cost saving, per-repeat units, tests and intervals.

The saving follows docs/otter.md: `extra(arm) = X(arm) - X(base)` and
`saved_pct = 100 * (1 - extra(otter) / extra(separate))`.

The statistical unit is one measured repeat (one full pass over the workload), never one token: consecutive
tokens of one generation share a batch, a cache and a slow spell of the machine, so they are not
independent. Tests (`scipy.stats.mannwhitneyu`) and intervals (`scipy.stats.bootstrap`, BCa) therefore run on
one aggregate per repeat: its `total_s`, and the median of its per-token latencies.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from otterbench.saving import saved_pct

Samples = Sequence[float] | np.ndarray
CONFIDENCE = 0.95
DEFAULT_N_BOOT = 2000


def summarize(samples: Samples, unit: str = "s") -> dict:
    """The results.json Summary of `samples`: median, p90, p99, stdev (ddof=1), n and the raw samples."""
    values = np.asarray(samples, dtype=float).ravel()
    n = int(values.size)
    if n == 0:
        return {"median": None, "p90": None, "p99": None, "stdev": None, "n": 0, "samples": [], "unit": unit}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {
        "median": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        # one sample has no spread to report; None says so instead of a misleading 0
        "stdev": float(np.std(values, ddof=1)) if n > 1 else None,
        "n": n,
        "samples": [float(v) for v in values],
        "unit": unit,
    }


def per_repeat_medians(samples: Samples, repeats: int) -> list[float]:
    """The median of each repeat's share of `samples` (repeats stored one after another, equal counts).

    Every repeat of an arm decodes the same workload for exactly max_new_tokens steps, so each holds the
    same number of per-token samples; a count that does not divide evenly means the file was edited.
    """
    values = np.asarray(samples, dtype=float).ravel()
    if repeats < 1 or values.size % repeats:
        raise ValueError(
            f"{values.size} per-token samples do not split into {repeats} equal repeats "
            "(re-run otterbench run: results.json was edited or cut)"
        )
    return [float(v) for v in np.median(values.reshape(repeats, -1), axis=1)]


def per_round_savings(base: Samples, separate: Samples, otter: Samples) -> list[float]:
    """saved_pct of each round's (base, separate, Otter) totals, skipping rounds where it is undefined.

    Under the interleaved schedule round i ran the three arms back to back, so a slow spell of the machine
    hits all three; under the sequential schedule the i-th repeats are independent draws, still valid units.
    """
    rounds = zip(base, separate, otter, strict=True)
    return [value for value in (saved_pct(*r) for r in rounds) if value is not None]


def slower_p_value(before: Samples, after: Samples) -> float:
    """One-sided Mann-Whitney U p-value that `after` tends to be larger than `before` (scipy; exact if small)."""
    from scipy import stats  # seconds to import: only where a test or an interval needs it

    return float(stats.mannwhitneyu(after, before, alternative="greater").pvalue)


def holm_adjusted(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (family-wise error control; scipy ships only FDR control).

    Sorted ascending, the k-th of m gets (m - k) * p, made non-decreasing and capped at 1 (k from 0).
    """
    order = np.argsort(p_values)
    m = len(order)
    scaled = np.asarray(p_values, dtype=float)[order] * (m - np.arange(m))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return [float(v) for v in adjusted]


def _saved_of_medians(
    base: np.ndarray, separate: np.ndarray, otter: np.ndarray, axis: int = -1
) -> np.ndarray:
    """saved_pct of the medians along `axis`, NaN where the separate arm is not slower than base."""
    b, s, o = (np.median(x, axis=axis) for x in (base, separate, otter))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(s > b, 100.0 * (1.0 - (o - b) / (s - b)), np.nan)


def _interval(result: Any) -> tuple[float, float] | None:
    """(low, high) of a scipy BootstrapResult, None when BCa could not give finite bounds."""
    low, high = result.confidence_interval
    return (float(low), float(high)) if np.isfinite(low) and np.isfinite(high) else None


def bootstrap_saved_ci(
    base: Samples,
    separate: Samples,
    otter: Samples,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
) -> tuple[float, float] | None:
    """BCa 95% CI of saved_pct(median base, median separate, median otter) over repeats; None if undefined.

    Equal counts are resampled as rounds (the triple of one round stays together: paired, as the
    interleaved schedule measured them); unequal counts (an interrupted run) are resampled independently.
    None when a resample leaves the separate arm no slower than base, or the repeats are too few to vary.
    """
    data = tuple(np.asarray(x, dtype=float) for x in (base, separate, otter))
    paired = len({x.size for x in data}) == 1
    return _bca(data, _saved_of_medians, n_boot, seed, paired)


def _bca(
    data: tuple[np.ndarray, ...], statistic: Any, n_boot: int, seed: int, paired: bool = False
) -> tuple[float, float] | None:
    """BCa 95% interval of `statistic` over the samples (resampled together when `paired`); None if undefined."""
    if min(x.size for x in data) < 2:
        return None
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate resamples are reported as None, not as warnings
        result = stats.bootstrap(
            data,
            statistic,
            n_resamples=n_boot,
            paired=paired,
            vectorized=True,
            confidence_level=CONFIDENCE,
            method="BCa",
            random_state=np.random.default_rng(seed),
        )
    return _interval(result)


def bootstrap_median_shift_ci(
    before: Samples, after: Samples, n_boot: int = DEFAULT_N_BOOT, seed: int = 0
) -> tuple[float, float] | None:
    """BCa 95% CI of median(after) - median(before), the two resampled independently; None if undefined."""

    def shift(b: np.ndarray, a: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.median(a, axis=axis) - np.median(b, axis=axis)

    return _bca(tuple(np.asarray(x, dtype=float) for x in (before, after)), shift, n_boot, seed)


def bootstrap_ratio_ci(
    a: Samples, b: Samples, n_boot: int = DEFAULT_N_BOOT, seed: int = 0
) -> tuple[float, float] | None:
    """BCa 95% CI of median(b) / median(a) (e.g. Otter over base); None when median(a) can be 0."""

    def ratio(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        den = np.median(x, axis=axis)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den != 0, np.median(y, axis=axis) / den, np.nan)

    return _bca(tuple(np.asarray(x, dtype=float) for x in (a, b)), ratio, n_boot, seed)
