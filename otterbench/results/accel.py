"""Speculative-decoding metrics of the accel task, derived from an arm's draft counters and the base arm.

Per speculative arm (`arm["speculation"]`, see the results schema): acceptance overall and by draft position,
tokens accepted per verifying forward, forwards of the deciding model (and of a draft model) per generated
token, time per token, speedup over base (median total time of base / of the arm, bootstrap CI95 over the
measured repeats), peak memory and its extra over base. Per saving of an accel pair: time per token and extra
peak memory of base, the separate arm and the Otter arm side by side (speculation aims to be *faster* than
base, so a saving of extra time is undefined whenever the separate arm is; the side-by-side figures are not).
"""

from __future__ import annotations

from typing import Any

from otterbench.arms.registry import decider
from otterbench.results.reference import reference_arm
from otterbench.results.stats import bootstrap_ratio_ci


def _ratio(numerator: float, denominator: float) -> float | None:
    return float(numerator / denominator) if denominator else None


def _ok(arm: dict | None) -> bool:
    return arm is not None and arm["status"] == "ok" and arm.get("latency") is not None


def _time_per_token(arm: dict, new_tokens: int) -> float | None:
    median = arm["latency"]["total_s"]["median"]
    return None if median is None else median / new_tokens


def _peak(arm: dict | None) -> int | None:
    return (arm.get("memory") or {}).get("peak_bytes") if _ok(arm) else None


def speculation_metrics(arm: dict, base: dict | None) -> dict[str, Any]:
    """The derived metrics of one speculative arm's counters (and, with a finished base arm, speedup)."""
    counts = arm["speculation"]
    proposed, accepted = counts["proposed_by_position"], counts["accepted_by_position"]
    new_tokens = counts["new_tokens"]
    forwards = arm["calls"][decider(arm["name"])]  # the model that decides (and verifies) each token
    metrics: dict[str, Any] = {
        "acceptance": _ratio(sum(accepted), sum(proposed)),
        "acceptance_by_position": [_ratio(a, p) for a, p in zip(accepted, proposed)],
        "accepted_per_forward": _ratio(sum(accepted), counts["verify_forwards"]),
        "forwards_per_token": _ratio(forwards, new_tokens),
        "draft_forwards_per_token": _ratio(arm["calls"].get("draft", 0), new_tokens),
        "time_per_token_s": _time_per_token(arm, new_tokens),
        "peak_bytes": _peak(arm),
        "extra_peak_bytes": None,
        "speedup": None,
        "speedup_ci95": None,
    }
    if _ok(base):
        base_total, arm_total = base["latency"]["total_s"], arm["latency"]["total_s"]
        metrics["speedup"] = _ratio(base_total["median"], arm_total["median"])
        ci = bootstrap_ratio_ci(arm_total["samples"], base_total["samples"])  # stat(base) / stat(arm)
        metrics["speedup_ci95"] = list(ci) if ci else None
        if None not in (metrics["peak_bytes"], _peak(base)):
            metrics["extra_peak_bytes"] = metrics["peak_bytes"] - _peak(base)
    return metrics


def _side_by_side(arms: dict[str, dict], saving: dict, new_tokens: int) -> dict[str, Any]:
    """Time per token and extra peak memory of base, separate and Otter arm, keyed by those roles."""
    roles = {"base": reference_arm(arms), "separate": arms.get(saving["separate_arm"])}
    roles["otter"] = arms.get(saving["otter_arm"])
    base_peak = _peak(roles["base"])
    per_token, extra = {}, {}
    for role, arm in roles.items():
        per_token[role] = _time_per_token(arm, new_tokens) if _ok(arm) else None
        peak = _peak(arm)
        extra[role] = None if None in (peak, base_peak) else peak - base_peak
    return {"time_per_token_s": per_token, "extra_peak_bytes": extra}


def add_accel_metrics(arms: list[dict], savings: list[dict]) -> None:
    """Fill `speculation` metrics of every speculative arm and the side-by-side figures of accel savings."""
    by_name = {arm["name"]: arm for arm in arms}
    base = reference_arm(by_name)
    for arm in arms:
        if arm.get("speculation") and arm["status"] == "ok":
            arm["speculation"].update(speculation_metrics(arm, base))
    for saving in savings:
        separate = by_name.get(saving["separate_arm"])
        if not _ok(separate) or not separate.get("speculation"):  # only speculative pairs: side by side
            continue
        new_tokens = separate["speculation"]["new_tokens"]
        saving.update(_side_by_side(by_name, saving, new_tokens))
