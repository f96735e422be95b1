"""How savings are shown: no interval from too few repeats, out-of-range savings explained, 80-column tables."""

from __future__ import annotations

import copy
import io

import numpy as np
from factories import make_results
from rich.console import Console

from otterbench.results.files import compute_savings
from otterbench.results.headline import (
    NO_INTERVAL,
    decode_saving,
    range_notes,
    space_saving,
    speedup_lines,
    time_saving,
)
from otterbench.results.report.markdown import savings_section
from otterbench.results.stats import summarize
from otterbench.results.summary import print_summary


def _set_totals(results: dict, totals: dict[str, list[float]]) -> dict:
    """A copy whose arms' total-time samples are `totals`, savings recomputed from them."""
    changed = copy.deepcopy(results)
    for arm in changed["arms"]:
        if arm["name"] in totals:
            arm["latency"]["total_s"] = summarize(totals[arm["name"]])
    changed["savings"] = compute_savings(changed["arms"], n_boot=200)
    return changed


def _faithful(results: dict) -> dict:
    return next(s for s in results["savings"] if s["separate_arm"] == "args-faithful")


def test_too_few_repeats_give_no_interval() -> None:
    for repeats in (1, 2):
        results = make_results(repeats=repeats)
        saving = _faithful(results)
        view = time_saving(results, saving)
        assert view.ci is None and view.repeats == repeats  # whatever was stored, none is shown
        assert NO_INTERVAL in view.text and "[" not in view.text
        assert any(note.startswith(NO_INTERVAL) for note in view.notes)
    view = time_saving(make_results(repeats=5), _faithful(make_results(repeats=5)))
    assert view.ci is not None and view.text.endswith(f"[{view.ci[0]:.1f}, {view.ci[1]:.1f}]")


def test_saving_above_100_is_explained() -> None:
    # Otter's repeats straddle base's: its extra is noise around zero, the saving lands above 100%
    results = _set_totals(
        make_results(repeats=5),
        {
            "base": [1.00, 1.02, 0.98, 1.01, 0.99],
            "args-faithful": [3.0, 3.1, 2.9, 3.05, 2.95],
            "otter-args": [0.99, 1.01, 0.97, 1.03, 0.98],
        },
    )
    view = time_saving(results, _faithful(results))
    assert view.value > 100
    assert any("above 100%" in note and "within measurement noise" in note for note in view.notes)


def test_saving_below_0_from_noise_is_explained() -> None:
    # the separate arm barely differs from base: its extra is noise, and Otter's extra exceeds it
    results = _set_totals(
        make_results(repeats=5),
        {
            "base": [1.00, 1.06, 0.95, 1.03, 0.98],
            "args-faithful": [1.01, 0.97, 1.05, 1.02, 0.99],
            "otter-args": [1.20, 1.22, 1.18, 1.21, 1.19],
        },
    )
    view = time_saving(results, _faithful(results))
    assert view.value < 0
    # no interval bounds this saving, so nothing may call it noise: the note says there is none
    assert any("below 0%" in note and "no interval to tell it from noise" in note for note in view.notes)
    assert not any("within measurement noise" in note for note in view.notes)


def test_wide_interval_says_why() -> None:
    rng = np.random.default_rng(0)
    noisy = {
        name: list(rng.uniform(low, low * 2, size=5))
        for name, low in (("base", 1.0), ("args-faithful", 1.6), ("otter-args", 1.2))
    }
    results = _set_totals(make_results(repeats=5), noisy)
    view = time_saving(results, _faithful(results))
    # BCa either gives a wide interval or none at all (resamples where the separate arm is not slower)
    if view.ci is not None:
        assert view.ci[1] - view.ci[0] > 20
        assert any(note.startswith("interval wider than +/-10 points") for note in view.notes)
    else:
        assert any(note.startswith("no interval:") and "spread" in note for note in view.notes)
    tight = make_results(repeats=5)  # 3% per-token noise: a narrow interval, no such note
    assert not any("wider" in note for note in time_saving(tight, _faithful(tight)).notes)


def test_space_saving_outside_range_is_explained() -> None:
    results = make_results()
    saving = dict(_faithful(results), extra_space_saved_pct=104.2)
    assert "reading noise" in " ".join(space_saving(results, saving).notes)
    assert space_saving(results, _faithful(results)).ci is None


def test_summary_fits_80_columns() -> None:
    results = make_results(repeats=2)
    out = io.StringIO()
    print_summary(Console(file=out, width=80, color_system=None), results)
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text  # no number cut short
    for arm in results["arms"]:
        assert f"{arm['latency']['total_s']['median'] * 1e3:,.2f}" in text
    assert NO_INTERVAL in text
    wide = io.StringIO()
    print_summary(Console(file=wide, width=140, color_system=None), results)
    assert "TTFT p50 ms" in wide.getvalue() and "TTFT p50 ms" not in text
    # energy per generated token (NVML on a GPU, RAPL on a CPU) where the run measured it
    joules = f"{results['arms'][0]['energy']['j_per_token']:.3g}"
    assert "J/token" in wide.getvalue() and joules in wide.getvalue() and "J/token" not in text
    for arm in results["arms"]:
        arm["energy"] = {"energy_j": None, "j_per_token": None, "supported": False, "note": "no counter"}
    unmeasured = io.StringIO()
    print_summary(Console(file=unmeasured, width=140, color_system=None), results)
    assert "J/token" not in unmeasured.getvalue()


def _with_stored(results: dict, **fields: object) -> tuple[dict, dict]:
    changed = copy.deepcopy(results)
    saving = _faithful(changed)
    saving.update(fields)
    return changed, saving


def test_above_100_whose_interval_excludes_100_says_otter_measured_faster() -> None:
    results, saving = _with_stored(
        make_results(repeats=5), extra_time_saved_pct=104.9, extra_time_saved_ci95=[101.8, 145.4]
    )
    notes = " ".join(time_saving(results, saving).notes)
    assert "excludes 100%" in notes and "Otter measured faster than base" in notes
    assert "cannot be faster by design" in notes and "within measurement noise" not in notes
    results, saving = _with_stored(
        make_results(repeats=5), extra_time_saved_pct=104.9, extra_time_saved_ci95=[97.0, 112.0]
    )
    notes = " ".join(time_saving(results, saving).notes)
    assert "within measurement noise" in notes and "measured faster" not in notes


def test_decode_only_savings_follow_the_same_rules() -> None:
    results, saving = _with_stored(
        make_results(repeats=5),
        extra_decode_time_saved_pct=119.5,
        extra_decode_time_saved_ci95=[110.0, 874.4],
    )
    view = decode_saving(results, saving)
    assert view.ci == (110.0, 874.4) and "Otter measured faster than base" in " ".join(view.notes)
    results, saving = _with_stored(
        make_results(repeats=5), extra_decode_time_saved_pct=-12.0, extra_decode_time_saved_ci95=[-30.0, 4.0]
    )
    assert "within measurement noise" in " ".join(decode_saving(results, saving).notes)
    out = io.StringIO()
    print_summary(Console(file=out, width=200, color_system=None), results)
    assert "args-faithful, decode: below 0%" in out.getvalue()
    assert range_notes(50.0, None, "TPOT") == []


def test_savings_without_any_limit_say_so_instead_of_naming_no_layout() -> None:
    results = make_results(repeats=5)
    for saving in results["savings"]:
        saving["predicted"] = None  # e.g. a run the planner cannot price
    out = io.StringIO()
    print_summary(Console(file=out, width=200, color_system=None), results)
    assert "Savings measured (no limits: the planner prices none of these separate arms)" in out.getvalue()
    assert "- layout" not in out.getvalue()


def _speculative(speedup: float, ci: list[float] | None) -> dict:
    results = make_results(repeats=5)
    otter = next(arm for arm in results["arms"] if arm["name"] == "otter-args")
    otter["speculation"] = {
        "speedup": speedup,
        "speedup_ci95": ci,
        "acceptance": 0.5,
        "acceptance_by_position": [0.5],
        "accepted_per_forward": 0.5,
        "forwards_per_token": 0.7,
        "draft_forwards_per_token": 0.0,
        "time_per_token_s": 0.01,
        "extra_peak_bytes": 1 << 20,
    }
    return results


def test_speculative_runs_lead_with_speedup_and_call_a_slower_arm_slower() -> None:
    results = _speculative(0.68, [0.61, 0.74])
    assert speedup_lines(results) == [
        "otter-args: speedup 0.68x [0.61, 0.74] over base, SLOWER than base: it takes 1.47x base's time"
    ]
    assert "slower than base (0.68x)" in " ".join(time_saving(results, _faithful(results)).notes)
    section = "\n".join(savings_section(results))
    assert section.index("Speculative decoding: otter-args: speedup 0.68x") < section.index(
        "extra time saved"
    )
    out = io.StringIO()
    print_summary(Console(file=out, width=200, color_system=None), results)
    assert out.getvalue().startswith("speculative decoding: otter-args: speedup 0.68x")
    assert "within measurement noise" in speedup_lines(_speculative(0.98, [0.9, 1.05]))[0]
    assert speedup_lines(_speculative(1.8, [1.6, 2.0]))[0].endswith("faster than base")
    assert not any(
        "slower than base" in n
        for n in time_saving(*(lambda r: (r, _faithful(r)))(_speculative(1.8, None))).notes
    )


def test_a_decode_interval_that_excludes_its_estimate_is_dropped_with_a_note() -> None:
    # a file written when the point was TPOT p50 over all steps: 84.9% beside a per-repeat CI [77.1, 84.1]
    results, saving = _with_stored(
        make_results(repeats=5), extra_decode_time_saved_pct=84.9, extra_decode_time_saved_ci95=[77.1, 84.1]
    )
    view = decode_saving(results, saving)
    assert view.ci is None and view.text == "84.9%"
    assert "its CI95 [77.1, 84.1] excludes the estimate 84.9%" in " ".join(view.notes)
