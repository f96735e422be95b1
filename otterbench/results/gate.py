"""The CI regression gate (`otterbench check RUN --baseline BASE`): every monitored figure of two runs.

The unit of every test is one measured repeat (`otterbench.results.stats`): each repeat's median per-token
latency and its total. A latency figure regresses when it got slower beyond its threshold AND the one-sided
Mann-Whitney U test over those repeat aggregates says so (Holm-adjusted over the check's latency tests,
p < alpha). The rules, per metric:
- `tpot`, `total` (every arm, any role): median of the repeat aggregates rises beyond the threshold (%).
  A slower separate-model baseline fails here by name: it would otherwise only inflate Otter's savings.
- `extra_time_saved` (per separate/Otter pair): the saving drops beyond the threshold (points) and the
  per-round savings of the run are significantly lower; a rise beyond the threshold is a warning with the
  arm that moved (usually a slower separate arm, which is its own `total` finding).
- `extra_space_saved`: drops beyond the threshold and Otter's extra peak grew above the noise floor (one
  peak reading per arm: no sample test); a rise is a warning.
- `decisions` (every arm): the generated token ids' hash changed. `non_disruption`: the verdict against
  the base's own numerics moved to a worse class (exact -> within the base's numerics -> disrupted); files
  without a verdict keep the former `exactness` (bit-equal before, not now) and `deviation` (max |logit
  diff| above the tolerance) rules. `arm_status`: an arm that finished in the baseline did not.
- `power` (inconclusive): the repeats are too few for the test to reach alpha at all.
- `run_status` (inconclusive): a run is partial or interrupted, or an arm measured fewer repeats than asked.
Verdicts (`findings.Verdict`): FAIL on any regression, else INCONCLUSIVE when a figure's smallest detectable
change exceeds its limit, it moved beyond its limit without significance, or a run is incomplete; else PASS.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from otterbench.results.figures import figure_ms
from otterbench.results.files import arm_by_name, describe_mismatch
from otterbench.results.findings import CheckResult, Finding, GateSettings
from otterbench.results.gate_data import detectable_text, run_completeness, undecided_reason
from otterbench.results.gate_nondisruption import non_disruption_findings
from otterbench.results.gate_savings import space_saving_finding, time_saving_finding
from otterbench.results.power import (
    LATENCY_METRICS,
    detectable_change_pct,
    latency_test_count,
    min_gate_repeats,
)
from otterbench.results.stats import holm_adjusted, per_repeat_medians, slower_p_value
from otterbench.results.thresholds import THRESHOLD_METRICS

# (metric, arm, (baseline, run) repeat aggregates, how they were normalised, (baseline, run) figure in ms)
Tested = tuple[str, str, tuple[list[float], list[float]], str, tuple[float, float]]


class WorkloadMismatch(ValueError):
    """Two runs measured different workloads; `differences` names each differing field."""

    def __init__(self, differences: list[str]) -> None:
        super().__init__(
            "workloads differ: " + "; ".join(differences) + " (pass --allow-mismatch to compare)"
        )
        self.differences = differences


def parse_percent(text: str, name: str = "threshold") -> float:
    """'10%' or '10' -> 10.0; anything else is a one-line ValueError."""
    raw = text.strip().removesuffix("%")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a percentage; write it like 10% or 10") from None
    if not value >= 0:
        raise ValueError(f"{name}={text!r} must be >= 0")
    return value


def parse_thresholds(items: list[str]) -> dict[str, float]:
    """['tpot=5%', ...] -> {'tpot': 5.0}; unknown metrics are refused naming the known ones."""
    thresholds = {}
    for item in items:
        metric, sep, value = item.partition("=")
        if not sep or metric.strip() not in THRESHOLD_METRICS:
            raise ValueError(
                f"--threshold {item!r}: expected METRIC=PERCENT with METRIC in {THRESHOLD_METRICS}"
            )
        thresholds[metric.strip()] = parse_percent(value, f"--threshold {metric.strip()}")
    return thresholds


def _both_ok(run: dict, baseline: dict) -> list[tuple[str, dict, dict]]:
    """(name, baseline arm, run arm) of every arm that finished in both runs, in the baseline's order."""
    run_arms = arm_by_name(run)
    pairs = []
    for name, arm in arm_by_name(baseline).items():
        now = run_arms.get(name)
        if arm["status"] == "ok" and now is not None and now["status"] == "ok":
            pairs.append((name, arm, now))
    return pairs


def repeat_units(arm: dict) -> dict[str, list[float]]:
    """One aggregate per measured repeat of a finished arm: its median tpot and its total (seconds)."""
    totals = arm["latency"]["total_s"]["samples"]
    tpot = per_repeat_medians(arm["latency"]["tpot_s"]["samples"], len(totals)) if totals else []
    return {"tpot": tpot, "total": list(totals)}


def _check_statuses(run: dict, baseline: dict) -> list[Finding]:
    """An arm that finished in the baseline and failed now regresses; one that never ran (the run was
    stopped before it) is undecided: nothing was measured to judge."""
    run_arms = arm_by_name(run)
    findings = []
    for name, arm in arm_by_name(baseline).items():
        now = run_arms.get(name)
        if arm["status"] == "ok" and now is not None and now["status"] != "ok":
            evidence = (now["error"] or "no error recorded").splitlines()[0][:120]
            failed = now["status"] == "failed"
            if not failed:
                evidence += "; INCONCLUSIVE: the arm did not run, so nothing was measured to judge"
            finding = Finding("arm_status", name, "ok", now["status"], None, None, evidence, failed)
            findings.append(dataclasses.replace(finding, inconclusive=not failed))
    return findings


def _check_decisions(run: dict, baseline: dict) -> list[Finding]:
    """Every arm must choose the same tokens as in the baseline: same workload, same greedy decisions."""
    findings = []
    for name, arm, now in _both_ok(run, baseline):
        was, is_ = arm["token_ids_hash"], now["token_ids_hash"]
        if was is None or is_ is None:
            continue
        changed = was != is_
        evidence = "generated token ids changed" if changed else "same token ids"
        findings.append(Finding("decisions", name, was[:16], is_[:16], None, None, evidence, changed))
    return findings


def local_speeds(results: dict, reference: dict, metric: str) -> dict[str, np.ndarray] | None:
    """How slow the machine ran at each measured repeat of each arm of `results`, against `reference`.

    Returns {arm: speeds, one per repeat}, 1.0 = as fast as in `reference`. A control arm (base or separate)
    measured at some moment reads the machine's speed there: its aggregate over its median in `reference`.
    Under the interleaved schedule the arms ran round-robin in the file's order, so every repeat has a
    place in time (round x arms + position); each control arm's readings, log-interpolated between its own
    repeats to that place, give one estimate, and the repeat's speed is the median of the estimates. A
    shared machine's speed drifts within a round (seconds), so readings taken next to a repeat are better
    than the round's. An arm never reads its own speed (that would cancel its own slowdown): Otter arms use
    every control arm, where the median of three is not moved by one of them getting slower on its own; a
    control arm uses the other control arms (its own readings only when it is the only one, so a lone
    control arm cannot fail in this mode). Under the sequential schedule nothing pairs, and every repeat
    gets one speed for the whole run. None without a control arm.
    """
    order = {arm["name"]: position for position, arm in enumerate(results["arms"])}
    period = len(results["arms"])
    measured = {name: repeat_units(now)[metric] for name, _before, now in _both_ok(results, reference)}
    readings = {}  # control arm -> (slots, log speed)
    for name, before, _now in _both_ok(results, reference):
        units, ref = measured[name], repeat_units(before)[metric]
        if before["role"] != "otter" and units and ref:
            slots = order[name] + period * np.arange(len(units))
            readings[name] = (slots, np.log(np.asarray(units) / np.median(ref)))
    if not readings:
        return None
    interleaved = results["config"].get("schedule") == "interleaved"
    speeds = {}
    for name, units in measured.items():
        others = [r for control, r in readings.items() if control != name] or list(readings.values())
        slots = order[name] + period * np.arange(len(units))
        if interleaved:
            estimates = np.vstack([np.interp(slots, where, log_speed) for where, log_speed in others])
            speeds[name] = np.exp(np.median(estimates, axis=0))
        else:
            speeds[name] = np.full(len(units), np.exp(np.median([np.median(r[1]) for r in others])))
    return speeds


def _latency_finding(tested: Tested, p_values: tuple[float, float], settings: GateSettings) -> Finding:
    """One arm's figure (`otterbench.results.figures`, ms): its change, the Holm-adjusted p of its repeat
    aggregates, the slowdown it could detect."""
    metric, name, (before, after), how, figures = tested
    p_raw, p_holm = p_values
    threshold = settings.thresholds[metric]
    was, now = figures
    if how:  # normalised: the change is that of the normalised repeat aggregates, the values stay the figures
        change = 100.0 * (float(np.median(after)) / float(np.median(before)) - 1.0)
    else:
        change = 100.0 * (now / was - 1.0)
    tests = settings.latency_tests
    detectable = detectable_change_pct(before, after, settings.alpha / tests)
    evidence = (
        f"{how}one-sided Mann-Whitney U over {len(before)}/{len(after)} repeats p={p_raw:.2g}, Holm over "
        f"{tests} tests p={p_holm:.2g} (alpha {settings.alpha:g}); smallest detectable slowdown "
        f"{detectable_text(detectable, '%')} vs limit {threshold:g}%"
    )
    regressed = change > threshold and p_holm < settings.alpha
    undecided = undecided_reason(regressed, change, threshold, detectable, "%")
    return Finding(
        metric,
        name,
        was,
        now,
        change,
        threshold,
        evidence + undecided,
        regressed,
        detectable=detectable,
        inconclusive=bool(undecided),
    )


def _latency_units(run: dict, baseline: dict, normalize: bool) -> list[Tested]:
    """(metric, arm, (baseline units, run units), how they were normalised, (baseline, run) figure in ms)."""
    speeds = {}
    if normalize:
        speeds = {
            m: (local_speeds(baseline, baseline, m), local_speeds(run, baseline, m)) for m in LATENCY_METRICS
        }
    tested = []
    for name, arm, now in _both_ok(run, baseline):
        before, after = repeat_units(arm), repeat_units(now)
        for metric in LATENCY_METRICS:
            if not (before[metric] and after[metric]):
                continue
            units, how = (before[metric], after[metric]), ""
            was_speed, now_speed = speeds.get(metric, (None, None))
            if was_speed is not None and now_speed is not None:
                units = (
                    [float(v) for v in np.asarray(units[0]) / was_speed[name]],
                    [float(v) for v in np.asarray(units[1]) / now_speed[name]],
                )
                typical = float(np.median(now_speed[name]))
                how = f"divided by the machine's speed at each repeat (run median {typical:.3f}); "
            figures = (figure_ms(arm, metric), figure_ms(now, metric))
            tested.append((metric, name, units, how, figures))
    return tested


def _check_latency(run: dict, baseline: dict, settings: GateSettings) -> list[Finding]:
    """Every arm's per-repeat median tpot and total: slower beyond the threshold and significantly fails.

    One check runs a test per arm and figure; Holm's step-down keeps the chance that any of them fires
    on an unchanged commit at alpha.
    """
    tested = _latency_units(run, baseline, settings.normalize)
    raw = [slower_p_value(*test[2]) for test in tested]
    settings = dataclasses.replace(settings, latency_tests=max(len(raw), 1))
    return [
        _latency_finding(test, (p, p_holm), settings)
        for test, p, p_holm in zip(tested, raw, holm_adjusted(raw), strict=True)
    ]


def _check_power(run: dict, baseline: dict, alpha: float) -> list[Finding]:
    """Inconclusive when the repeats are too few for any latency finding to be significant."""
    counts = [
        len(a["latency"]["total_s"]["samples"])
        for _n, arm, now in _both_ok(run, baseline)
        for a in (arm, now)
    ]
    needed = min_gate_repeats(alpha, latency_test_count(len(counts) // 2))
    if not counts or min(counts) >= needed:
        return []
    evidence = (
        f"{min(counts)} repeats: the tests cannot reach alpha {alpha:g} (Holm over every arm's tpot and total) "
        f"under {needed} per run, so no slowdown "
        "can fail the gate; record both runs with `otterbench run --preset ci`"
    )
    return [Finding("power", "repeats", None, min(counts), None, None, evidence, False, inconclusive=True)]


def check_runs(
    run: dict,
    baseline: dict,
    thresholds: dict[str, float] | None = None,
    max_regression: float | None = None,
    allow_mismatch: bool = False,
    settings: GateSettings | None = None,
) -> CheckResult:
    """Gate `run` against `baseline`; raises WorkloadMismatch unless the workloads match or are allowed.

    `max_regression` replaces every default threshold, `thresholds` then overrides single metrics; the
    rest of `settings` (alpha, noise floors, normalisation) is used as given.
    """
    mismatches = describe_mismatch(baseline, run)
    if mismatches and not allow_mismatch:
        raise WorkloadMismatch(mismatches)
    settings = settings or GateSettings()
    limits = dict(settings.thresholds)
    if max_regression is not None:
        limits = dict.fromkeys(THRESHOLD_METRICS, max_regression)
    settings = dataclasses.replace(settings, thresholds={**limits, **(thresholds or {})})
    findings = [*run_completeness(run, baseline), *_check_statuses(run, baseline)]
    findings += _check_decisions(run, baseline)
    findings += non_disruption_findings(run, baseline, settings.deviation_tolerance)
    findings += _check_power(run, baseline, settings.alpha) + _check_latency(run, baseline, settings)
    now_by_pair = {(s["separate_arm"], s["otter_arm"]): s for s in run["savings"]}
    for was_s in baseline["savings"]:
        now_s = now_by_pair.get((was_s["separate_arm"], was_s["otter_arm"]))
        if now_s is not None:
            findings += [time_saving_finding(run, baseline, was_s, now_s, settings)]
            findings += [space_saving_finding(run, baseline, was_s, now_s, settings)]
    return CheckResult(findings=findings, mismatches=mismatches)
