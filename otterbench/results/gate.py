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
from dataclasses import asdict, dataclass, field

import numpy as np

from otterbench.results.files import arm_by_name, describe_mismatch
from otterbench.results.power import (
    DEFAULT_ALPHA,
    detectable_change_pct,
    detectable_shift,
    min_gate_repeats,
)
from otterbench.results.stats import per_repeat_medians, per_round_savings, slower_p_value

THRESHOLD_METRICS = ("tpot", "total", "extra_time_saved", "extra_space_saved")
# chosen with the power study in docs/regression-gate.md (--preset ci, 10 runs of one commit)
DEFAULT_THRESHOLDS = {"tpot": 5.0, "total": 5.0, "extra_time_saved": 5.0, "extra_space_saved": 10.0}
# a peak-memory change smaller than this share of the base arm's peak is within the instrument's resolution
# (allocator and RSS granularity on CPU, allocator rounding on GPU): not evidence of a regression
DEFAULT_SPACE_NOISE_PCT = 1.0
# the fused layout's logits deviate from the base model's by float32 rounding (< 1e-4 in tests/test_otter_fused.py)
DEFAULT_DEVIATION_TOLERANCE = 1e-3


class WorkloadMismatch(ValueError):
    """Two runs measured different workloads; `differences` names each differing field."""

    def __init__(self, differences: list[str]) -> None:
        super().__init__(
            "workloads differ: " + "; ".join(differences) + " (pass --allow-mismatch to compare)"
        )
        self.differences = differences


@dataclass(frozen=True)
class GateSettings:
    """How strict the gate is: thresholds per metric, significance, noise floors, normalisation."""

    thresholds: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    alpha: float = DEFAULT_ALPHA
    space_noise_pct: float = DEFAULT_SPACE_NOISE_PCT
    deviation_tolerance: float = DEFAULT_DEVIATION_TOLERANCE
    # divide the run's latencies by the control arms' speed factor: for shared machines only (it cancels
    # any slowdown the arms share, e.g. the decoding loop or a torch upgrade)
    normalize: bool = False


@dataclass(frozen=True)
class Finding:
    """One monitored figure of one arm or pair: both values, the change, the evidence and the verdict."""

    metric: str  # arm_status | decisions | exactness | deviation | power | tpot | total | extra_*_saved
    subject: str  # an arm name, "separate->otter", "non_disruption" or "repeats"
    baseline: float | str | None
    current: float | str | None
    change: float | None  # percent for tpot/total, percentage points for savings
    threshold: float | None
    evidence: str
    regressed: bool
    warning: bool = False  # worth a look, does not fail the gate
    detectable: float | None = None  # smallest change this finding could have flagged, same unit as change


@dataclass
class CheckResult:
    """The gate's verdict: every finding, and the workload differences that were allowed."""

    findings: list[Finding]
    mismatches: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no finding regressed."""
        return not any(finding.regressed for finding in self.findings)

    @property
    def regressions(self) -> list[Finding]:
        """The findings that fail the gate."""
        return [finding for finding in self.findings if finding.regressed]

    @property
    def warnings(self) -> list[Finding]:
        """The findings worth a look that do not fail the gate."""
        return [finding for finding in self.findings if finding.warning]

    def to_dict(self) -> dict:
        """A JSON-ready form: passed, findings, mismatches."""
        return {
            "passed": self.passed,
            "findings": [asdict(finding) for finding in self.findings],
            "mismatches": self.mismatches,
        }


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


def _totals(results: dict, saving: dict) -> tuple[list[float], list[float], list[float]] | None:
    arms = arm_by_name(results)
    triple = []
    for name in ("base", saving["separate_arm"], saving["otter_arm"]):
        arm = arms.get(name)
        if arm is None or arm["status"] != "ok" or not arm["latency"]["total_s"]["samples"]:
            return None
        triple.append(arm["latency"]["total_s"]["samples"])
    return tuple(triple) if len({len(t) for t in triple}) == 1 else None


def _mover(run: dict, baseline: dict, saving: dict) -> str:
    """Which of base, separate and Otter moved most in median total: the reason a saving changed."""
    moves = []
    for name in ("base", saving["separate_arm"], saving["otter_arm"]):
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


def _time_saving(run: dict, baseline: dict, was_s: dict, now_s: dict, settings: GateSettings) -> Finding:
    """Per-round savings of both runs: a significant drop beyond the threshold fails, a rise warns."""
    threshold = settings.thresholds["extra_time_saved"]
    subject = f"{was_s['separate_arm']}->{was_s['otter_arm']}"
    was, now = was_s["extra_time_saved_pct"], now_s["extra_time_saved_pct"]
    triples = _totals(baseline, was_s), _totals(run, now_s)
    if was is None or now is None or None in triples:
        return Finding(
            "extra_time_saved", subject, was, now, None, threshold, "not comparable: a saving is null", False
        )
    before, after = per_round_savings(*triples[0]), per_round_savings(*triples[1])
    if len(before) < 2 or len(after) < 2:
        return Finding(
            "extra_time_saved", subject, was, now, None, threshold, "not comparable: too few rounds", False
        )
    change = now - was
    p_drop, p_rise = slower_p_value(after, before), slower_p_value(before, after)
    detectable = max(threshold, detectable_shift(before, after, settings.alpha))
    evidence = (
        f"per-round savings over {len(before)}/{len(after)} rounds, one-sided Mann-Whitney U p={min(p_drop, p_rise):.2g}"
        f"; smallest detectable change {detectable:.1f} pp; {_mover(run, baseline, was_s)}"
    )
    regressed = -change > threshold and p_drop < settings.alpha
    rose = change > threshold and p_rise < settings.alpha
    if rose:
        evidence = "saving rose beyond the threshold (a slower separate arm inflates it): " + evidence
    return Finding(
        "extra_time_saved", subject, was, now, change, threshold, evidence, regressed, rose, detectable
    )


def _peak_of(results: dict, name: str) -> int | None:
    arm = arm_by_name(results).get(name)
    return None if arm is None or arm["status"] != "ok" or not arm["memory"] else arm["memory"]["peak_bytes"]


def _otter_extra_growth(
    run: dict, baseline: dict, saving: dict, noise_pct: float
) -> tuple[int | None, float]:
    """How much the Otter arm's extra peak (over base) grew, and the noise floor it must exceed."""
    peaks = [_peak_of(r, name) for r in (baseline, run) for name in ("base", saving["otter_arm"])]
    floor = noise_pct / 100 * (peaks[0] or 0)
    if None in peaks:
        return None, floor
    return (peaks[3] - peaks[2]) - (peaks[1] - peaks[0]), floor


def _space_saving(run: dict, baseline: dict, was_s: dict, now_s: dict, settings: GateSettings) -> Finding:
    """One peak reading per arm, so no test: a drop beyond the threshold with Otter's extra peak grown fails."""
    threshold = settings.thresholds["extra_space_saved"]
    subject = f"{was_s['separate_arm']}->{was_s['otter_arm']}"
    was, now = was_s["extra_space_saved_pct"], now_s["extra_space_saved_pct"]
    if was is None or now is None:
        return Finding(
            "extra_space_saved", subject, was, now, None, threshold, "not comparable: a saving is null", False
        )
    change = now - was
    grew, floor = _otter_extra_growth(run, baseline, was_s, settings.space_noise_pct)
    evidence = (
        "one peak reading per arm: no sample test; Otter's extra peak grew "
        + ("by an unknown amount" if grew is None else f"{grew / 2**20:+.1f} MiB")
        + f" (noise floor {floor / 2**20:.1f} MiB = {settings.space_noise_pct:g}% of the base peak)"
    )
    regressed = -change > threshold and grew is not None and grew > floor
    rose = change > threshold
    if rose:
        evidence = "saving rose beyond the threshold (a larger separate arm inflates it): " + evidence
    return Finding("extra_space_saved", subject, was, now, change, threshold, evidence, regressed, rose)


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
            findings += [_time_saving(run, baseline, was_s, now_s, settings)]
            findings += [_space_saving(run, baseline, was_s, now_s, settings)]
    return CheckResult(findings=findings, mismatches=mismatches)
