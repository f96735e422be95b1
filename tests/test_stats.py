"""stats and power: summaries, the saving, per-repeat units, scipy tests and BCa intervals, the gate's power."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from otterbench.results.power import (
    detectable_change_pct,
    detectable_shift,
    gate_readiness,
    latency_test_count,
    min_gate_repeats,
    smallest_p,
)
from otterbench.results.stats import (
    bootstrap_median_shift_ci,
    bootstrap_saved_ci,
    holm_adjusted,
    per_repeat_medians,
    per_round_savings,
    slower_p_value,
    summarize,
)
from otterbench.saving import saved_pct


def test_summarize_matches_numpy_percentiles() -> None:
    samples = np.random.default_rng(3).lognormal(size=101)
    summary = summarize(samples, unit="J")
    assert summary["median"] == float(np.percentile(samples, 50))
    assert summary["p90"] == float(np.percentile(samples, 90))
    assert summary["p99"] == float(np.percentile(samples, 99))
    assert summary["stdev"] == float(np.std(samples, ddof=1))
    assert summary["n"] == 101 and summary["samples"] == samples.tolist() and summary["unit"] == "J"


def test_summarize_empty_and_single() -> None:
    empty = summarize([])
    assert empty["n"] == 0 and empty["median"] is None and empty["samples"] == []
    single = summarize([2.5])
    assert single["median"] == single["p99"] == 2.5 and single["stdev"] is None


def test_saved_pct_formula() -> None:
    # separate adds 10 over base, Otter adds 1: 90% of the extra saved
    assert saved_pct(10.0, 20.0, 11.0) == pytest.approx(90.0)
    assert saved_pct(10.0, 20.0, 10.0) == 100.0
    assert saved_pct(10.0, 20.0, 25.0) == pytest.approx(-50.0)  # Otter costs more extra
    assert saved_pct(10.0, 10.0, 11.0) is None  # no extra to save
    assert saved_pct(10.0, 9.0, 11.0) is None


def test_slower_p_value_is_scipys_one_sided_test() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(10.0, 1.0, size=20)
    assert slower_p_value(a, a + 3.0) < 1e-6  # later set larger: significant
    assert slower_p_value(a + 3.0, a) > 0.99  # later set smaller: not a slowdown at all
    assert slower_p_value(a, a + 3.0) == stats.mannwhitneyu(a + 3.0, a, alternative="greater").pvalue
    # 3 repeats each, fully separated: the exact test's floor, 1 / C(6, 3)
    assert slower_p_value([1, 2, 3], [4, 5, 6]) == pytest.approx(smallest_p(3, 3)) == pytest.approx(0.05)


def test_per_repeat_medians_split_in_order() -> None:
    assert per_repeat_medians([1, 2, 3, 10, 20, 30], 2) == [2.0, 20.0]
    with pytest.raises(ValueError, match="equal repeats"):
        per_repeat_medians([1, 2, 3], 2)


def test_per_round_savings_skip_undefined_rounds() -> None:
    # round 2: the separate arm is not slower than base, so that round has no saving
    assert per_round_savings([1, 1, 1], [3, 1, 2], [2, 5, 1]) == [50.0, 100.0]


def test_bootstrap_saved_ci_contains_point_estimate() -> None:
    rng = np.random.default_rng(1)
    base, separate, otter = rng.normal(1.0, 0.02, 7), rng.normal(3.0, 0.05, 7), rng.normal(1.05, 0.02, 7)
    point = saved_pct(*(float(np.median(x)) for x in (base, separate, otter)))
    ci = bootstrap_saved_ci(base, separate, otter, n_boot=1000, seed=0)
    assert ci is not None and ci[0] <= point <= ci[1]
    assert bootstrap_saved_ci(base, separate, otter, n_boot=1000, seed=0) == ci  # seeded
    assert bootstrap_saved_ci(base, base, otter, n_boot=200) is None  # separate not above base
    assert bootstrap_saved_ci(base[:1], separate[:1], otter[:1]) is None  # one repeat cannot vary
    unpaired = bootstrap_saved_ci(base, separate[:5], otter, n_boot=1000)  # an interrupted arm
    assert unpaired is not None and unpaired[0] <= point <= unpaired[1]


def test_bootstrap_saved_ci_pairs_rounds() -> None:
    # a slow spell hits round i of all three arms alike: resampled as rounds, the saving stays steady
    rng = np.random.default_rng(4)
    spell = rng.choice([1.0, 1.6, 2.2], size=12)
    noise = rng.normal(1.0, 0.01, size=(3, 12))
    base, separate, otter = spell * noise[0], 3.0 * spell * noise[1], 1.2 * spell * noise[2]
    aligned = bootstrap_saved_ci(base, separate, otter, n_boot=1000)
    shuffled = bootstrap_saved_ci(base, rng.permutation(separate), rng.permutation(otter), n_boot=1000)
    assert aligned is not None and shuffled is not None
    assert aligned[0] <= 90.0 <= aligned[1]
    assert aligned[1] - aligned[0] < (shuffled[1] - shuffled[0]) / 3


def test_median_shift_ci() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(1.0, 0.01, 30)
    ci = bootstrap_median_shift_ci(a, a + 0.3, n_boot=500)
    assert ci is not None and ci[0] <= 0.3 <= ci[1] and ci[0] > 0.0


def test_holm_adjusted_by_hand() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> made non-decreasing
    assert holm_adjusted([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjusted([0.5, 0.9]) == [1.0, 1.0]


def test_gate_needs_five_repeats_at_alpha_one_percent() -> None:
    assert min_gate_repeats(0.01) == 5 and min_gate_repeats(0.05) == 4
    # safety: 4 arms x (tpot, total) = 8 tests, the strictest at 0.01 / 8: 1 / C(12, 6) = 1/924 passes
    assert latency_test_count(4) == 8 and min_gate_repeats(0.01, 8) == 6
    assert smallest_p(5, 5) == pytest.approx(1 / 252)
    exact = stats.mannwhitneyu([6, 7, 8, 9, 10], [1, 2, 3, 4, 5], alternative="greater", method="exact")
    assert exact.pvalue == pytest.approx(smallest_p(5, 5))


def test_detectable_change_shrinks_with_repeats() -> None:
    # evenly spread log-normal quantiles: the same 5% spread at every size, no sampling luck
    noisy = [np.exp(0.05 * stats.norm.ppf((np.arange(n) + 0.5) / n)) for n in (4, 10, 40)]
    assert detectable_change_pct(noisy[0], noisy[0]) == math.inf  # the test cannot reach alpha
    ten, forty = detectable_change_pct(noisy[1], noisy[1]), detectable_change_pct(noisy[2], noisy[2])
    assert 0 < forty < ten < 50
    assert detectable_shift([1.0, 1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0]) == 0.0


def test_gate_readiness_says_whether_the_run_can_feed_the_gate() -> None:
    enough, line = gate_readiness(5, 40, arms=4)
    assert (
        not enough and "cannot feed" in line and "6+ repeats" in line and "--preset ci` (40 repeats)" in line
    )
    enough, line = gate_readiness(8, 40, arms=4)
    assert not enough and "only for large slowdowns" in line and "--preset ci` (40 repeats)" in line
    enough, line = gate_readiness(40, 40, arms=4)
    assert enough and "can feed" in line
    assert gate_readiness(3)[0] is False and gate_readiness(20)[0] is True
