"""How much data the regression gate needs: the repeats that let its test fire, and the change it can detect.

The gate's unit is one aggregate per measured repeat (docs/regression-gate.md). With n repeats in each run,
the one-sided exact Mann-Whitney U test can give no p-value below 1 / C(2n, n) (every run repeat slower
than every baseline repeat), so below a few repeats no slowdown, however large, is significant.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from otterbench.results.thresholds import DEFAULT_ALPHA

# the figures tested per arm; the gate holds alpha over all of them at once (Holm), so each needs alpha/m
LATENCY_METRICS = ("tpot", "total")
DEFAULT_POWER = 0.8
# asymptotic relative efficiency of Mann-Whitney U against the t-test on normal data (3/pi)
_MWU_EFFICIENCY = 3 / math.pi


def smallest_p(n_before: int, n_after: int) -> float:
    """The smallest one-sided exact Mann-Whitney U p-value of two sample sets of these sizes."""
    return 1.0 / math.comb(n_before + n_after, n_before)


def latency_test_count(arms: int) -> int:
    """How many latency tests one check runs over `arms` arms (each tested at alpha / this, at worst)."""
    return len(LATENCY_METRICS) * max(arms, 1)


def min_gate_repeats(alpha: float = DEFAULT_ALPHA, tests: int = 1) -> int:
    """The fewest repeats per run for which the gate's strictest test (alpha / tests) can pass at all."""
    n = 1
    while smallest_p(n, n) >= alpha / tests:
        n += 1
    return n


def detectable_shift(
    before: Sequence[float],
    after: Sequence[float],
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
) -> float:
    """The upward shift (in the data's unit) the gate's test finds with `power` at `alpha`, from the spread.

    Normal approximation: shift = (z_(1-alpha) + z_power) * sd * sqrt(1/n1 + 1/n2), sd a robust spread of both
    sets, divided by sqrt(3/pi) for the rank test's efficiency. Infinite when the exact test cannot reach
    alpha with these sizes.
    """
    n1, n2 = len(before), len(after)
    if n1 < 2 or n2 < 2 or smallest_p(n1, n2) >= alpha:
        return math.inf
    # a robust spread (normal-scaled MAD of both sets around their own medians): one slow repeat of a
    # shared machine would inflate a standard deviation, and the rank test is not moved by it either
    centred = np.concatenate([np.asarray(x, dtype=float) - np.median(x) for x in (before, after)])
    spread = float(stats.median_abs_deviation(centred, scale="normal"))
    z = stats.norm.ppf(1 - alpha) + stats.norm.ppf(power)
    return float(z * spread * math.sqrt(1 / n1 + 1 / n2) / math.sqrt(_MWU_EFFICIENCY))


def detectable_change_pct(
    before: Sequence[float],
    after: Sequence[float],
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
) -> float:
    """The slowdown (%) of positive timings the gate finds with `power` at `alpha` (shift of their logs)."""
    shift = detectable_shift(np.log(before), np.log(after), alpha, power)
    return float(100.0 * math.expm1(shift)) if math.isfinite(shift) else math.inf


def gate_readiness(
    repeats: int, ci_repeats: int | None = None, arms: int = 1, alpha: float = DEFAULT_ALPHA
) -> tuple[bool, str]:
    """(whether `repeats` can feed `otterbench check`, one line saying so and what can) for a run of `arms` arms.

    `ci_repeats`: the suite's ci preset, the run length whose power docs/regression-gate.md measured. Below
    the fewest repeats at which the gate's tests can reach alpha, every latency figure is INCONCLUSIVE;
    between that and the preset, only large slowdowns are detectable, so the 5% limits read INCONCLUSIVE.
    """
    needed = min_gate_repeats(alpha, latency_test_count(arms))
    preset = f"`--preset ci` ({ci_repeats} repeats) can" if ci_repeats else f"{needed}+ repeats can"
    if repeats < needed:
        return False, (
            f"gate: --repeats {repeats} cannot feed `otterbench check` (its tests need {needed}+ repeats per "
            f"run to reach alpha {alpha:g}; it would answer INCONCLUSIVE); {preset}"
        )
    if ci_repeats and repeats < ci_repeats:
        return False, (
            f"gate: --repeats {repeats} can feed `otterbench check` only for large slowdowns (smaller limits "
            f"will read INCONCLUSIVE); {preset}, measured in docs/regression-gate.md"
        )
    return (
        True,
        f"gate: {repeats} repeats can feed `otterbench check` (the suite's ci preset runs {ci_repeats or needed})",
    )
