"""Whether the gate's data can decide: incomplete runs, and figures whose limit lies below what they can detect.

A check that could not have seen a change at its limit must not read PASS: such a figure is *undecided*, and
the verdict is INCONCLUSIVE unless another figure regressed (`findings.Verdict`).
"""

from __future__ import annotations

import math

from otterbench.results.findings import Finding


def detectable_text(value: float | None, unit: str) -> str:
    """`54.3%`, `3.1 pp`, `none (too few repeats)`: the smallest detectable change as the table shows it."""
    if value is None:
        return "-"
    if not math.isfinite(value):
        return "none (too few repeats)"
    return f"{value:.1f}{' ' if unit == 'pp' else ''}{unit}"


def undecided_reason(regressed: bool, worsened: float, limit: float, detectable: float, unit: str) -> str:
    """Why a figure that did not regress is still undecided ('' when it is decided).

    `worsened`: the change in the bad direction (slowdown %, drop of a saving in points). Undecided when the
    data cannot detect a change of `limit` (detectable > limit), or when the figure worsened beyond its limit
    but not significantly (a real regression and noise cannot be told apart).
    """
    if regressed:
        return ""
    if detectable > limit:
        return "; INCONCLUSIVE: it cannot detect its limit (record both runs with `--preset ci`, or a quieter machine)"
    if worsened > limit:
        return "; INCONCLUSIVE: it worsened beyond its limit but not significantly"
    return ""


def _short_arms(results: dict) -> list[str]:
    """'otter-args 11/40' for every finished arm that measured fewer repeats than the run asked for."""
    asked = results["config"].get("repeats")
    short = []
    for arm in results["arms"]:
        latency = arm.get("latency") or {}
        n = (latency.get("total_s") or {}).get("n", 0)
        if arm["status"] == "ok" and asked and n < asked:
            short.append(f"{arm['name']} {n}/{asked}")
    return short


def run_completeness(run: dict, baseline: dict) -> list[Finding]:
    """One undecided finding per run (run, baseline) that is partial, interrupted or short of repeats."""
    findings = []
    for label, results in (("baseline", baseline), ("run", run)):
        short = _short_arms(results)
        if results["status"] == "complete" and not short:
            continue
        evidence = f"{label} {results['run_id']} is {results['status']}"
        if short:
            evidence += "; repeats measured of those asked: " + ", ".join(short)
        evidence += "; INCONCLUSIVE: gate only complete runs (re-run it to the end)"
        findings.append(
            Finding(
                "run_status",
                label,
                "complete",
                results["status"],
                None,
                None,
                evidence,
                False,
                inconclusive=True,
            )
        )
    return findings
