"""The CI regression gate (`otterbench check RUN --baseline BASE`): every monitored figure of two runs.

The unit of every test is one measured repeat (`otterbench.results.stats`): each repeat's median per-token
latency and its total. A latency figure regresses when it got slower beyond its threshold AND the one-sided
Mann-Whitney U test over those repeat aggregates says so (p < alpha). The rules, per metric:
- `tpot`, `total` (every arm, any role): median of the repeat aggregates rises beyond the threshold (%).
  A slower separate-model baseline fails here by name: it would otherwise only inflate Otter's savings.
- `extra_time_saved` (per separate/Otter pair): the saving drops beyond the threshold (points) and the
  per-round savings of the run are significantly lower; a rise beyond the threshold is a warning with the
  arm that moved (usually a slower separate arm, which is its own `total` finding).
- `extra_space_saved`: drops beyond the threshold and Otter's extra peak grew above the noise floor (one
  peak reading per arm: no sample test); a rise is a warning.
- `decisions` (every arm): the generated token ids' hash changed. `exactness`: the baseline's split-layout
  logits were bit-equal to the base model's and the run's are not. `deviation`: the run's non-disruption
  max |logit diff| exceeds the tolerance. `arm_status`: an arm that finished in the baseline did not.
- `power` (a warning): the repeats are too few for the test to reach alpha at all.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from otterbench.results.files import arm_by_name, describe_mismatch
from otterbench.results.findings import (
    THRESHOLD_METRICS,
    CheckResult,
    Finding,
    GateSettings,
)
from otterbench.results.gate_savings import space_saving_finding, time_saving_finding
from otterbench.results.power import (
    detectable_change_pct,
    min_gate_repeats,
)
from otterbench.results.stats import per_repeat_medians, slower_p_value


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
    run_arms = arm_by_name(run)
    findings = []
    for name, arm in arm_by_name(baseline).items():
        now = run_arms.get(name)
        if arm["status"] == "ok" and now is not None and now["status"] != "ok":
            evidence = (now["error"] or "no error recorded").splitlines()[0][:120]
            findings.append(Finding("arm_status", name, "ok", now["status"], None, None, evidence, True))
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


def _check_non_disruption(run: dict, baseline: dict, tolerance: float) -> list[Finding]:
    was, now = baseline["non_disruption"], run["non_disruption"]
    diff = now["max_abs_logit_diff"]
    layout = now.get("layout") or "?"
    not_measured = "not measured (no Otter arm finished)"
    exactness = Finding(
        "exactness",
        "non_disruption",
        str(was["exact"]),
        str(now["exact"]),
        None,
        None,
        not_measured if diff is None else f"max |logit diff| now {diff:.3g} ({layout} layout)",
        regressed=bool(was["exact"]) and now["exact"] is not True,
    )
    if diff is None:
        return [exactness]
    deviation = Finding(
        "deviation",
        f"non_disruption ({layout})",
        was["max_abs_logit_diff"],
        diff,
        None,
        tolerance,
        f"max |logit diff| {diff:.3g} vs tolerance {tolerance:g} (--deviation-tolerance)",
        regressed=diff > tolerance,
    )
    return [exactness, deviation]


def speed_factor(run: dict, baseline: dict) -> float | None:
    """How much slower the machine ran `run`: the median, over non-Otter arms, of their tpot ratio run/baseline.

    The median of three or more control arms is not moved by one of them getting slower on its own.
    """
    ratios = []
    for _name, arm, now in _both_ok(run, baseline):
        if arm["role"] != "otter":
            before, after = repeat_units(arm)["tpot"], repeat_units(now)["tpot"]
            if before and after:
                ratios.append(float(np.median(after)) / float(np.median(before)))
    return float(np.median(ratios)) if ratios else None


def _latency_finding(
    metric: str,
    name: str,
    before: list[float],
    after: list[float],
    settings: GateSettings,
    factor: float | None,
) -> Finding:
    threshold = settings.thresholds[metric]
    if factor:
        after = [value / factor for value in after]
    was, now = float(np.median(before)), float(np.median(after))
    change = 100.0 * (now / was - 1.0)
    p_value = slower_p_value(before, after)
    detectable = max(threshold, detectable_change_pct(before, after, settings.alpha))
    evidence = (
        f"{'run divided by speed factor ' + format(factor, '.3f') + '; ' if factor else ''}"
        f"one-sided Mann-Whitney U over {len(before)}/{len(after)} repeats p={p_value:.2g} (alpha "
        f"{settings.alpha:g}); smallest detectable slowdown {detectable:.1f}%"
    )
    regressed = change > threshold and p_value < settings.alpha
    return Finding(metric, name, was, now, change, threshold, evidence, regressed, detectable=detectable)


def _check_latency(run: dict, baseline: dict, settings: GateSettings) -> list[Finding]:
    """Every arm's per-repeat median tpot and total: slower beyond the threshold and significantly fails."""
    factor = speed_factor(run, baseline) if settings.normalize else None
    findings = []
    for name, arm, now in _both_ok(run, baseline):
        before, after = repeat_units(arm), repeat_units(now)
        for metric in ("tpot", "total"):
            if before[metric] and after[metric]:
                findings.append(
                    _latency_finding(metric, name, before[metric], after[metric], settings, factor)
                )
    return findings


def _check_power(run: dict, baseline: dict, alpha: float) -> list[Finding]:
    """A warning when the repeats are too few for any latency finding to be significant."""
    counts = [
        len(a["latency"]["total_s"]["samples"])
        for _n, arm, now in _both_ok(run, baseline)
        for a in (arm, now)
    ]
    needed = min_gate_repeats(alpha)
    if not counts or min(counts) >= needed:
        return []
    evidence = (
        f"{min(counts)} repeats: the test cannot reach alpha {alpha:g} under {needed} per run, so no slowdown "
        "can fail the gate; record both runs with `otterbench run --preset ci`"
    )
    return [Finding("power", "repeats", None, min(counts), None, None, evidence, False, warning=True)]


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
    findings = [*_check_statuses(run, baseline), *_check_decisions(run, baseline)]
    findings += _check_non_disruption(run, baseline, settings.deviation_tolerance)
    findings += _check_power(run, baseline, settings.alpha) + _check_latency(run, baseline, settings)
    now_by_pair = {(s["separate_arm"], s["otter_arm"]): s for s in run["savings"]}
    for was_s in baseline["savings"]:
        now_s = now_by_pair.get((was_s["separate_arm"], was_s["otter_arm"]))
        if now_s is not None:
            findings += [time_saving_finding(run, baseline, was_s, now_s, settings)]
            findings += [space_saving_finding(run, baseline, was_s, now_s, settings)]
    return CheckResult(findings=findings, mismatches=mismatches)
