"""The CI regression gate (`check`) and the side-by-side comparison (`compare`) of two runs.

A monitored figure regresses when it worsens beyond its threshold AND the worsening is statistically
significant over the raw samples:
- `otter_tpot` (each Otter arm's per-token latency): median rises by more than the threshold (percent of
  the baseline median) and the two-sided Mann-Whitney U test on the tpot samples gives p < alpha.
- `extra_time_saved` (per separate/Otter pair): the saving drops by more than the threshold in percentage
  points and the bootstrap 95% CI of (run saving - baseline saving), resampling the total_s samples of
  base, separate and Otter arms of both runs independently, lies wholly below 0.
- `extra_space_saved`: drops by more than the threshold in percentage points. Peak memory is one reading per
  arm, not a sample set, so there is no test: the threshold alone decides.
- `exactness`: the baseline's non-disruption was exact and the run's is not. No threshold, no statistics.
- `arm_status`: an arm that finished in the baseline failed or did not run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from otterbench.results.files import arm_by_name, describe_mismatch
from otterbench.results.stats import bootstrap_saved_delta_ci, mann_whitney_u
from otterbench.results.thresholds import (  # their home; callers may import them from here too
    DEFAULT_ALPHA,
    DEFAULT_SPACE_NOISE_PCT,
    DEFAULT_THRESHOLDS,
    THRESHOLD_METRICS,
)


class WorkloadMismatch(ValueError):
    """Two runs measured different workloads; `differences` names each differing field."""

    def __init__(self, differences: list[str]) -> None:
        super().__init__(
            "workloads differ: " + "; ".join(differences) + " (pass --allow-mismatch to compare)"
        )
        self.differences = differences


@dataclass(frozen=True)
class Finding:
    """One monitored figure of one arm or pair: both values, the change, the evidence and the verdict."""

    metric: str  # exactness | arm_status | otter_tpot | extra_time_saved | extra_space_saved
    subject: str  # an arm name, "separate->otter", or "non_disruption"
    baseline: float | str | None
    current: float | str | None
    change: float | None  # percent for otter_tpot, percentage points for savings
    threshold: float | None
    evidence: str
    regressed: bool


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
    """['otter_tpot=5%', ...] -> {'otter_tpot': 5.0}; unknown metrics are refused naming the known ones."""
    thresholds = {}
    for item in items:
        metric, sep, value = item.partition("=")
        if not sep or metric.strip() not in THRESHOLD_METRICS:
            raise ValueError(
                f"--threshold {item!r}: expected METRIC=PERCENT with METRIC in {THRESHOLD_METRICS}"
            )
        thresholds[metric.strip()] = parse_percent(value, f"--threshold {metric.strip()}")
    return thresholds


def _check_exactness(run: dict, baseline: dict) -> Finding:
    was, now = baseline["non_disruption"]["exact"], run["non_disruption"]["exact"]
    diff = run["non_disruption"]["max_abs_logit_diff"]
    return Finding(
        "exactness",
        "non_disruption",
        str(was),
        str(now),
        None,
        None,
        "not measured (no Otter arm finished)" if diff is None else f"max |logit diff| now {diff:.3g}",
        regressed=bool(was) and now is not True,
    )


def _check_statuses(run: dict, baseline: dict) -> list[Finding]:
    run_arms = arm_by_name(run)
    findings = []
    for name, arm in arm_by_name(baseline).items():
        now = run_arms.get(name)
        if arm["status"] == "ok" and now is not None and now["status"] != "ok":
            evidence = (now["error"] or "no error recorded").splitlines()[0][:120]
            findings.append(Finding("arm_status", name, "ok", now["status"], None, None, evidence, True))
    return findings


def _speed_factor(run: dict, baseline: dict) -> float | None:
    """How much slower the machine ran `run` than `baseline`: the median tpot ratio of the non-Otter arms.

    The control arms (base and separate-model arms) run in the same rounds as the Otter arms; the median of
    their ratios cancels a machine that is uniformly slower in one run and is not moved by one arm's outlier.
    """
    run_arms = arm_by_name(run)
    ratios = []
    for name, arm in arm_by_name(baseline).items():
        now = run_arms.get(name)
        if arm["role"] == "otter" or arm["status"] != "ok" or now is None or now["status"] != "ok":
            continue
        before, after = arm["latency"]["tpot_s"]["samples"], now["latency"]["tpot_s"]["samples"]
        if before and after:
            ratios.append(float(np.median(after)) / float(np.median(before)))
    return float(np.median(ratios)) if ratios else None


def _check_tpot(run: dict, baseline: dict, threshold: float, alpha: float) -> list[Finding]:
    """Otter's per-token latency, with the run's samples divided by the machine's speed factor.

    What remains is Otter's own cost per token; without control arms the comparison is absolute.
    """
    run_arms = arm_by_name(run)
    factor = _speed_factor(run, baseline)
    relative = factor is not None
    findings = []
    for name, arm in arm_by_name(baseline).items():
        now = run_arms.get(name)
        if arm["role"] != "otter" or arm["status"] != "ok" or now is None or now["status"] != "ok":
            continue
        before, after = arm["latency"]["tpot_s"]["samples"], now["latency"]["tpot_s"]["samples"]
        if not before or not after:
            continue
        if relative:
            after = [value / factor for value in after]
        change = 100.0 * (float(np.median(after)) / float(np.median(before)) - 1.0)
        p_value = mann_whitney_u(before, after)
        regressed = change > threshold and p_value < alpha
        evidence = (
            f"{f'run samples divided by the speed factor {factor:.3f} of the control arms; ' if relative else ''}"
            f"Mann-Whitney U p={p_value:.2g} (alpha {alpha:g}), n={len(before)}/{len(after)}"
        )
        findings.append(
            Finding(
                "otter_tpot",
                name,
                float(np.median(before)),
                float(np.median(after)),
                change,
                threshold,
                evidence,
                regressed,
            )
        )
    return findings


def _total_triple(results: dict, saving: dict) -> tuple[list[float], ...] | None:
    arms = arm_by_name(results)
    triple = []
    for name in ("base", saving["separate_arm"], saving["otter_arm"]):
        arm = arms.get(name)
        if arm is None or arm["status"] != "ok" or not arm["latency"]["total_s"]["samples"]:
            return None
        triple.append(arm["latency"]["total_s"]["samples"])
    return tuple(triple)


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


def _check_saving(
    run: dict,
    baseline: dict,
    saving_was: dict,
    saving_now: dict,
    kind: str,
    threshold: float,
    n_boot: int,
    space_noise_pct: float = DEFAULT_SPACE_NOISE_PCT,
) -> Finding | None:
    key = f"extra_{kind}_saved_pct"
    was, now = saving_was[key], saving_now[key]
    subject = f"{saving_was['separate_arm']}->{saving_was['otter_arm']}"
    if was is None or now is None:
        return Finding(
            f"extra_{kind}_saved",
            subject,
            was,
            now,
            None,
            threshold,
            "not comparable: a saving is null",
            False,
        )
    change = now - was
    if kind == "space":
        grew, floor = _otter_extra_growth(run, baseline, saving_was, space_noise_pct)
        evidence = (
            "one peak reading per arm: no sample test; Otter's extra peak grew "
            + ("by an unknown amount" if grew is None else f"{grew / 2**20:+.1f} MiB")
            + f" (noise floor {floor / 2**20:.1f} MiB = {space_noise_pct:g}% of the base peak)"
        )
        regressed = -change > threshold and grew is not None and grew > floor
        return Finding("extra_space_saved", subject, was, now, change, threshold, evidence, regressed)
    before, after = _total_triple(baseline, saving_was), _total_triple(run, saving_now)
    ci = bootstrap_saved_delta_ci(before, after, n_boot=n_boot) if before and after else None
    significant = ci is not None and ci[1] < 0
    evidence = "bootstrap CI95 of change: " + (f"[{ci[0]:.2f}, {ci[1]:.2f}] pp" if ci else "undefined")
    return Finding(
        "extra_time_saved",
        subject,
        was,
        now,
        change,
        threshold,
        evidence,
        -change > threshold and significant,
    )


def check_runs(
    run: dict,
    baseline: dict,
    thresholds: dict[str, float] | None = None,
    max_regression: float | None = None,
    alpha: float = DEFAULT_ALPHA,
    allow_mismatch: bool = False,
    n_boot: int = 2000,
    space_noise_pct: float = DEFAULT_SPACE_NOISE_PCT,
) -> CheckResult:
    """Gate `run` against `baseline`; raises WorkloadMismatch unless the workloads match or are allowed."""
    mismatches = describe_mismatch(baseline, run)
    if mismatches and not allow_mismatch:
        raise WorkloadMismatch(mismatches)
    defaults = (
        DEFAULT_THRESHOLDS if max_regression is None else dict.fromkeys(THRESHOLD_METRICS, max_regression)
    )
    limits = {metric: (thresholds or {}).get(metric, defaults[metric]) for metric in THRESHOLD_METRICS}
    findings = [_check_exactness(run, baseline), *_check_statuses(run, baseline)]
    findings += _check_tpot(run, baseline, limits["otter_tpot"], alpha)
    now_by_pair = {(s["separate_arm"], s["otter_arm"]): s for s in run["savings"]}
    for saving_was in baseline["savings"]:
        saving_now = now_by_pair.get((saving_was["separate_arm"], saving_was["otter_arm"]))
        if saving_now is None:
            continue
        for kind in ("time", "space"):
            limit = limits[f"extra_{kind}_saved"]
            findings.append(
                _check_saving(run, baseline, saving_was, saving_now, kind, limit, n_boot, space_noise_pct)
            )
    return CheckResult(findings=findings, mismatches=mismatches)


_COMPARE_METRICS = {
    "ttft median (s)": ("ttft_s", "median"),
    "tpot p50 (s)": ("tpot_s", "median"),
    "tpot p90 (s)": ("tpot_s", "p90"),
    "total median (s)": ("total_s", "median"),
}


def _arm_metrics(arm: dict | None) -> dict[str, float | None]:
    if arm is None or arm["status"] != "ok":
        return dict.fromkeys([*_COMPARE_METRICS, "peak (MiB)"])
    values = {label: arm["latency"][m][f] for label, (m, f) in _COMPARE_METRICS.items()}
    peak = (arm["memory"] or {}).get("peak_bytes")
    values["peak (MiB)"] = None if peak is None else peak / (1 << 20)
    return values


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a in (None, 0) or b is None else b / a


def compare_arms(a: dict, b: dict) -> pd.DataFrame:
    """Long table, one row per arm and metric: value in A, value in B, B/A."""
    arms_a, arms_b = arm_by_name(a), arm_by_name(b)
    rows = []
    for name in [*arms_a, *(n for n in arms_b if n not in arms_a)]:
        va, vb = _arm_metrics(arms_a.get(name)), _arm_metrics(arms_b.get(name))
        status_a = arms_a[name]["status"] if name in arms_a else "absent"
        status_b = arms_b[name]["status"] if name in arms_b else "absent"
        for metric in va:
            rows.append(
                {
                    "arm": name,
                    "status": f"{status_a}/{status_b}",
                    "metric": metric,
                    "a": va[metric],
                    "b": vb[metric],
                    "b_over_a": _ratio(va[metric], vb[metric]),
                }
            )
    return pd.DataFrame(rows)


def compare_savings(a: dict, b: dict) -> pd.DataFrame:
    """One row per pair and kind: saving in A and B (percent) and the change in percentage points."""
    by_pair_b = {(s["separate_arm"], s["otter_arm"]): s for s in b["savings"]}
    rows = []
    for saving_a in a["savings"]:
        saving_b = by_pair_b.get((saving_a["separate_arm"], saving_a["otter_arm"]), {})
        for kind in ("space", "time"):
            key = f"extra_{kind}_saved_pct"
            va, vb = saving_a[key], saving_b.get(key)
            rows.append(
                {
                    "pair": f"{saving_a['separate_arm']}->{saving_a['otter_arm']}",
                    "saving": f"extra {kind}",
                    "a_pct": va,
                    "b_pct": vb,
                    "change_pp": None if va is None or vb is None else vb - va,
                }
            )
    return pd.DataFrame(rows)
