"""The gate's non-disruption findings: the run's verdict against the baseline's (results/disruption_verdict.py).

A verdict that moved to a worse class (exact -> within the base's numerics -> disrupted) fails. Files written
before verdicts existed carry no yardstick: for them the former rules apply (`exactness`: the baseline was
bit-equal and the run is not; `deviation`: the run's max |Δlogit| is above `--deviation-tolerance`).
A run or baseline whose check did not run (no Otter arm finished, the run was stopped) has nothing to judge:
its finding is undecided (INCONCLUSIVE), never a regression.
"""

from __future__ import annotations

from otterbench.results.disruption_verdict import VERDICTS, verdict_of, was_measured
from otterbench.results.findings import Finding


def _verdict_finding(was: dict, now: dict) -> Finding:
    before, after = verdict_of(was), verdict_of(now)
    ratio = now.get("ratio_to_yardstick")
    yardstick = (now.get("yardstick") or {}).get("max_abs_logit_diff")
    if now.get("judged_on", "logits") != "logits":  # a generate-level backend: judged on tokens
        evidence = (
            f"{before} -> {after}: {now['criterion']}; token agreement now {now['token_agreement']:.3g}"
        )
        if now.get("max_abs_logprob_diff") is not None:
            own = (now.get("yardstick") or {}).get("max_abs_logprob_diff")
            evidence += f", max |Δlogprob| {now['max_abs_logprob_diff']:.3g}"
            evidence += "" if own is None else f", the base's own {own:.3g}"
            evidence += "" if ratio is None else f" ({ratio:.2f}x)"
        return _finding(before, after, now, evidence)
    evidence = f"{before} -> {after}: max |Δlogit| now {now['max_abs_logit_diff']:.3g}"
    if yardstick is not None:
        evidence += f", the base's own {yardstick:.3g}" + ("" if ratio is None else f" ({ratio:.2f}x)")
    return _finding(before, after, now, evidence)


def _finding(before: str, after: str, now: dict, evidence: str) -> Finding:
    return Finding(
        "non_disruption",
        f"non_disruption ({now.get('layout') or '?'})",
        before,
        after,
        None,
        None,
        evidence,
        regressed=VERDICTS.index(after) > VERDICTS.index(before),
    )


def _unmeasured_finding(was: dict, now: dict) -> Finding:
    """Either side's check did not run: nothing to compare, so the finding is undecided, not regressed."""
    side, block = ("run", now) if not was_measured(now) else ("baseline", was)
    reason = block.get("reason") or "no Otter arm finished"
    judged = "verdict" in was or "verdict" in now  # the verdict classes, else the former exactness rule
    metric, key = ("non_disruption", "verdict") if judged else ("exactness", "exact")
    layout = now.get("layout") or was.get("layout") or "?"
    values = [str(b.get(key)) if was_measured(b) else "not measured" for b in (was, now)]
    return Finding(
        metric,
        f"non_disruption ({layout})" if judged else "non_disruption",
        *values,
        None,
        None,
        f"not measured in the {side} ({reason}); INCONCLUSIVE: nothing to judge",
        regressed=False,
        inconclusive=True,
    )


def _former_findings(was: dict, now: dict, tolerance: float) -> list[Finding]:
    """The rules for files without a verdict: lost bit-exactness, and a deviation above the tolerance."""
    diff = now["max_abs_logit_diff"]
    layout = now.get("layout") or "?"
    exactness = Finding(
        "exactness",
        "non_disruption",
        str(was["exact"]),
        str(now["exact"]),
        None,
        None,
        "no logit compared" if diff is None else f"max |logit diff| now {diff:.3g} ({layout} layout)",
        regressed=bool(was["exact"]) and now["exact"] is False,
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
        f"max |logit diff| {diff:.3g} vs tolerance {tolerance:g} (--deviation-tolerance; no yardstick)",
        regressed=diff > tolerance,
    )
    return [exactness, deviation]


def non_disruption_findings(run: dict, baseline: dict, tolerance: float) -> list[Finding]:
    """One verdict finding when both runs were judged; else the former exactness and deviation findings;
    one undecided finding when either side was not measured."""
    was, now = baseline["non_disruption"], run["non_disruption"]
    if not (was_measured(was) and was_measured(now)):
        return [_unmeasured_finding(was, now)]
    if verdict_of(was) is None or verdict_of(now) is None:
        return _former_findings(was, now, tolerance)
    return [_verdict_finding(was, now)]
