"""stats: summaries against numpy, the saving formula, Mann-Whitney U, bootstrap intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from otterbench.results.stats import (
    bootstrap_ratio_ci,
    bootstrap_saved_ci,
    bootstrap_saved_delta_ci,
    mann_whitney_u,
    saved_pct,
    summarize,
)


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


def test_mann_whitney_hand_computed() -> None:
    # U = 0, mean 4.5, sigma^2 = 3*3/12*7 = 5.25, z = (4.5 - 0.5)/sqrt(5.25)
    expected = math.erfc(4.0 / math.sqrt(5.25) / math.sqrt(2.0))
    assert mann_whitney_u([1, 2, 3], [4, 5, 6]) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.0809, abs=1e-4)


def test_mann_whitney_identical_shifted_and_ties() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(10.0, 1.0, size=50)
    assert mann_whitney_u(a, a.copy()) == 1.0
    assert mann_whitney_u(a, a + 3.0) < 1e-10
    assert mann_whitney_u([5, 5, 5], [5, 5, 5]) == 1.0
    tied_a, tied_b = [1, 1, 2, 2, 3], [2, 3, 3, 4, 4]
    assert mann_whitney_u(tied_a, tied_b) == pytest.approx(mann_whitney_u(tied_b, tied_a))
    with pytest.raises(ValueError, match="both sides"):
        mann_whitney_u([], [1.0])


def test_bootstrap_saved_ci_contains_point_estimate() -> None:
    rng = np.random.default_rng(1)
    base, separate, otter = rng.normal(1.0, 0.02, 7), rng.normal(3.0, 0.05, 7), rng.normal(1.05, 0.02, 7)
    point = saved_pct(*(float(np.median(x)) for x in (base, separate, otter)))
    ci = bootstrap_saved_ci(base, separate, otter, n_boot=1000, seed=0)
    assert ci is not None and ci[0] <= point <= ci[1]
    assert bootstrap_saved_ci(base, separate, otter, n_boot=1000, seed=0) == ci  # seeded
    assert bootstrap_saved_ci(base, base, otter, n_boot=200) is None  # separate not above base


def test_bootstrap_ratio_and_delta_ci() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(1.0, 0.01, 30)
    ci = bootstrap_ratio_ci(a, a * 1.3, n_boot=500)
    assert ci is not None and ci[0] <= 1.3 <= ci[1] and ci[0] > 1.0
    triple = (rng.normal(1.0, 0.01, 6), rng.normal(2.0, 0.01, 6), rng.normal(1.05, 0.01, 6))
    worse = (triple[0], triple[1], triple[2] * 1.3)
    delta = bootstrap_saved_delta_ci(triple, worse, n_boot=500)
    assert delta is not None and delta[1] < 0
