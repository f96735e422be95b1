"""The gate's saving findings: Otter's share of the separate arm's extra time and extra space, run vs baseline."""

from __future__ import annotations

import numpy as np

from otterbench.results.files import arm_by_name
from otterbench.results.findings import Finding, GateSettings
from otterbench.results.gate_data import detectable_text, undecided_reason
from otterbench.results.power import detectable_shift
from otterbench.results.reference import reference_name
from otterbench.results.stats import bootstrap_median_shift_ci, per_round_savings, slower_p_value


def _totals(results: dict, saving: dict) -> tuple[list[float], list[float], list[float]] | None:
    arms = arm_by_name(results)
    triple = []
    for name in (reference_name(arms), saving["separate_arm"], saving["otter_arm"]):
        arm = arms.get(name)
        if arm is None or arm["status"] != "ok" or not arm["latency"]["total_s"]["samples"]:
            return None
        triple.append(arm["latency"]["total_s"]["samples"])
    return tuple(triple) if len({len(t) for t in triple}) == 1 else None


def _mover(run: dict, baseline: dict, saving: dict) -> str:
    """Which of base, separate and Otter moved most in median total: the reason a saving changed."""
    moves, reference = [], reference_name(arm_by_name(run))
    for name in (reference, saving["separate_arm"], saving["otter_arm"]):
        before, after = (arm_by_name(r).get(name) for r in (baseline, run))
        if before and after and before["status"] == after["status"] == "ok":
            was, now = (float(np.median(a["latency"]["total_s"]["samples"])) for a in (before, after))
            moves.append((abs(now / was - 1.0), name, 100.0 * (now / was - 1.0)))
    if not moves:
        return "no arm comparable"
    _, name, pct = max(moves)
    role = (
        "the separate arm"
        if name == saving["separate_arm"]
        else "Otter"
        if name == saving["otter_arm"]
        else "base"
    )
    return f"largest move: {name} ({role}) total {pct:+.1f}%"


def _null_saving(
    metric: str, subject: str, was: float | None, now: float | None, threshold: float
) -> Finding:
    """A saving null in a run (its arms did not finish, or the separate arm cost no extra over base): never
    a regression; undecided when the other run had one, since what it became cannot be told."""
    evidence = "not comparable: a saving is null"
    one_sided = (was is None) != (now is None)
    if one_sided:
        evidence += (
            f" in the {'baseline' if was is None else 'run'} only; INCONCLUSIVE: its change is unknown"
        )
    return Finding(metric, subject, was, now, None, threshold, evidence, False, inconclusive=one_sided)


def time_saving_finding(
    run: dict, baseline: dict, was_s: dict, now_s: dict, settings: GateSettings
) -> Finding:
    """Per-round savings of both runs: a significant drop beyond the threshold fails, a rise warns."""
    threshold = settings.thresholds["extra_time_saved"]
    subject = f"{was_s['separate_arm']}->{was_s['otter_arm']}"
    was, now = was_s["extra_time_saved_pct"], now_s["extra_time_saved_pct"]
    triples = _totals(baseline, was_s), _totals(run, now_s)
    if was is None or now is None:
        return _null_saving("extra_time_saved", subject, was, now, threshold)
    if None in triples:
        evidence = (
            "not comparable: base, separate and Otter do not share their rounds (a cut run); INCONCLUSIVE"
        )
        return Finding(
            "extra_time_saved", subject, was, now, None, threshold, evidence, False, inconclusive=True
        )
    before, after = per_round_savings(*triples[0]), per_round_savings(*triples[1])
    if len(before) < 2 or len(after) < 2:
        evidence = "not comparable: too few rounds; INCONCLUSIVE: record both runs with `--preset ci`"
        return Finding(
            "extra_time_saved", subject, was, now, None, threshold, evidence, False, inconclusive=True
        )
    change = now - was
    p_drop, p_rise = slower_p_value(after, before), slower_p_value(before, after)
    detectable = detectable_shift(before, after, settings.alpha)
    shift = bootstrap_median_shift_ci(before, after)
    evidence = (
        f"per-round savings over {len(before)}/{len(after)} rounds, one-sided Mann-Whitney U "
        f"p={min(p_drop, p_rise):.2g}, BCa CI95 of the shift "
        + ("undefined" if shift is None else f"[{shift[0]:+.1f}, {shift[1]:+.1f}] pp")
        + f"; smallest detectable change {detectable_text(detectable, 'pp')} vs limit {threshold:g} pp; "
        + _mover(run, baseline, was_s)
    )
    regressed = -change > threshold and p_drop < settings.alpha
    rose = change > threshold and p_rise < settings.alpha
    if rose:
        evidence = "saving rose beyond the threshold (a slower separate arm inflates it): " + evidence
    undecided = undecided_reason(regressed, -change, threshold, detectable, "pp")
    return Finding(
        "extra_time_saved",
        subject,
        was,
        now,
        change,
        threshold,
        evidence + undecided,
        regressed,
        rose,
        detectable,
        inconclusive=bool(undecided),
    )


def _peak_of(results: dict, name: str) -> int | None:
    arm = arm_by_name(results).get(name)
    return None if arm is None or arm["status"] != "ok" or not arm["memory"] else arm["memory"]["peak_bytes"]


def _otter_extra_growth(
    run: dict, baseline: dict, saving: dict, noise_pct: float
) -> tuple[int | None, float]:
    """How much the Otter arm's extra peak (over base) grew, and the noise floor it must exceed."""
    peaks = [
        _peak_of(r, name)
        for r in (baseline, run)
        for name in (reference_name(arm_by_name(r)), saving["otter_arm"])
    ]
    floor = noise_pct / 100 * (peaks[0] or 0)
    if None in peaks:
        return None, floor
    return (peaks[3] - peaks[2]) - (peaks[1] - peaks[0]), floor


def space_saving_finding(
    run: dict, baseline: dict, was_s: dict, now_s: dict, settings: GateSettings
) -> Finding:
    """One peak reading per arm, so no test: a drop beyond the threshold with Otter's extra peak grown fails."""
    threshold = settings.thresholds["extra_space_saved"]
    subject = f"{was_s['separate_arm']}->{was_s['otter_arm']}"
    was, now = was_s["extra_space_saved_pct"], now_s["extra_space_saved_pct"]
    if was is None or now is None:
        return _null_saving("extra_space_saved", subject, was, now, threshold)
    change = now - was
    grew, floor = _otter_extra_growth(run, baseline, was_s, settings.space_noise_pct)
    evidence = (
        "one peak reading per arm: no sample test; Otter's extra peak grew "
        + ("by an unknown amount" if grew is None else f"{grew / 2**20:+.1f} MiB")
        + f" (noise floor {floor / 2**20:.1f} MiB = {settings.space_noise_pct:g}% of the base peak)"
    )
    regressed = -change > threshold and grew is not None and grew > floor
    # a drop beyond the threshold whose cause cannot be read (a peak missing): undecided, not a regression
    undecided = -change > threshold and grew is None
    if undecided:
        evidence += "; INCONCLUSIVE: it dropped beyond its limit, but Otter's extra peak cannot be read"
    rose = change > threshold
    if rose:
        evidence = "saving rose beyond the threshold (a larger separate arm inflates it): " + evidence
    return Finding(
        "extra_space_saved",
        subject,
        was,
        now,
        change,
        threshold,
        evidence,
        regressed,
        rose,
        inconclusive=undecided,
    )
