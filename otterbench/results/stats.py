"""Statistics over raw samples, numpy only: summaries, the extra-cost saving, bootstrap CIs, Mann-Whitney U.

The saving follows docs/otter.md: `extra(arm) = X(arm) - X(base)` and
`saved_pct = 100 * (1 - extra(otter) / extra(separate))`. Bootstrap CIs are percentile intervals from
resampling each sample set independently with replacement (the arms ran in separate repeats, so there is
no pairing to keep).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

Stat = Callable[..., np.ndarray]  # called as stat(array, axis=-1), like np.median
Samples = Sequence[float] | np.ndarray

# a bootstrap CI is withheld when more than this share of resamples leave extra(separate) <= 0:
# the saving is then undefined too often for a percentile interval to mean anything
_MAX_UNDEFINED_SHARE = 0.5


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


def saved_pct(base: float, separate: float, otter: float) -> float | None:
    """Percent of the separate arm's extra cost over base that the Otter arm saves (None if extra <= 0)."""
    extra_separate = separate - base
    if not extra_separate > 0:
        return None
    return float(100.0 * (1.0 - (otter - base) / extra_separate))


def _resample(rng: np.random.Generator, samples: Samples, n_boot: int, stat: Stat) -> np.ndarray:
    """`n_boot` bootstrap replicates of `stat` over `samples`: shape [n_boot]."""
    values = np.asarray(samples, dtype=float).ravel()
    if values.size == 0:
        raise ValueError("bootstrap needs at least one sample in every set; got an empty one")
    picks = rng.integers(0, values.size, size=(n_boot, values.size))
    return np.asarray(stat(values[picks], axis=-1), dtype=float)


def _saved_replicates(
    rng: np.random.Generator, base: Samples, separate: Samples, otter: Samples, n_boot: int, stat: Stat
) -> np.ndarray:
    """Bootstrap replicates of saved_pct, NaN where extra(separate) <= 0: shape [n_boot]."""
    b, s, o = (_resample(rng, x, n_boot, stat) for x in (base, separate, otter))
    extra_separate = s - b
    with np.errstate(divide="ignore", invalid="ignore"):
        saved = 100.0 * (1.0 - (o - b) / extra_separate)
    return np.where(extra_separate > 0, saved, np.nan)


def _percentile_ci(replicates: np.ndarray) -> tuple[float, float] | None:
    """2.5th and 97.5th percentiles of the defined replicates, or None when too many are undefined."""
    defined = replicates[np.isfinite(replicates)]
    if defined.size == 0 or defined.size < (1 - _MAX_UNDEFINED_SHARE) * replicates.size:
        return None
    lo, hi = np.percentile(defined, [2.5, 97.5])
    return float(lo), float(hi)


def bootstrap_saved_ci(
    base: Samples,
    separate: Samples,
    otter: Samples,
    n_boot: int = 2000,
    seed: int = 0,
    stat: Stat = np.median,
) -> tuple[float, float] | None:
    """Bootstrap 95% CI of saved_pct(stat(base), stat(separate), stat(otter)); None if mostly undefined."""
    rng = np.random.default_rng(seed)
    return _percentile_ci(_saved_replicates(rng, base, separate, otter, n_boot, stat))


def bootstrap_saved_delta_ci(
    before: tuple[Samples, Samples, Samples],
    after: tuple[Samples, Samples, Samples],
    n_boot: int = 2000,
    seed: int = 0,
    stat: Stat = np.median,
) -> tuple[float, float] | None:
    """Bootstrap 95% CI of saved_pct(after) - saved_pct(before), each a (base, separate, otter) triple."""
    rng = np.random.default_rng(seed)
    saved_before = _saved_replicates(rng, *before, n_boot, stat)
    saved_after = _saved_replicates(rng, *after, n_boot, stat)
    return _percentile_ci(saved_after - saved_before)


def bootstrap_ratio_ci(
    a: Samples, b: Samples, n_boot: int = 2000, seed: int = 0, stat: Stat = np.median
) -> tuple[float, float] | None:
    """Bootstrap 95% CI of stat(b) / stat(a) (e.g. run over baseline); None when stat(a) is mostly 0."""
    rng = np.random.default_rng(seed)
    ra, rb = _resample(rng, a, n_boot, stat), _resample(rng, b, n_boot, stat)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(ra != 0, rb / ra, np.nan)
    return _percentile_ci(ratio)


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of `values`, tied values sharing the mean of their ranks."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    first_rank = np.cumsum(counts) - counts + 1  # rank of the first member of each tie group
    return (first_rank + (counts - 1) / 2.0)[inverse]


def mann_whitney_u(a: Samples, b: Samples) -> float:
    """Two-sided Mann-Whitney U p-value: normal approximation with tie and continuity correction.

    z = (|U - n1*n2/2| - 0.5) / sigma, sigma^2 = n1*n2/12 * ((n+1) - sum(t^3 - t) / (n*(n-1))) over tie
    groups of size t; p = erfc(z / sqrt 2). Close to the exact test from n >= 3 per side (it is the
    "asymptotic" method of common statistics packages); for tiny samples it is conservative at best.
    """
    x, y = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    n1, n2 = x.size, y.size
    if n1 == 0 or n2 == 0:
        raise ValueError(f"mann_whitney_u needs samples on both sides; got sizes {n1} and {n2}")
    n = n1 + n2
    ranks = _average_ranks(np.concatenate([x, y]))
    u1 = float(ranks[:n1].sum()) - n1 * (n1 + 1) / 2.0
    _, tie_sizes = np.unique(np.concatenate([x, y]), return_counts=True)
    tie_term = float(np.sum(tie_sizes.astype(float) ** 3 - tie_sizes))
    variance = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1)))
    if variance <= 0:  # every value is the same: no evidence of any shift
        return 1.0
    z = max(abs(u1 - n1 * n2 / 2.0) - 0.5, 0.0) / math.sqrt(variance)
    return min(1.0, math.erfc(z / math.sqrt(2.0)))
