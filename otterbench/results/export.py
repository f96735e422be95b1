"""Export a run for github-action-benchmark's `customSmallerIsBetter` tool: a JSON list of named values.

Every entry is smaller-is-better. Savings (bigger is better) are exported as the extra cost that REMAINS,
`100 - saved` ("% of the separate arm's extra cost Otter still pays"), so one file and one tool cover all.
A saving that is null in results.json (the separate arm cost no extra) is left out.
"""

from __future__ import annotations

from otterbench.arms.registry import baseline_kind
from otterbench.results.figures import FIGURES, UNIT, figure_ms, seconds_to_ms


def _latency_entries(prefix: str, arm: dict) -> list[dict]:
    """The arm's latency figures (`otterbench.results.figures`: named and in the unit every reader uses)."""
    entries = []
    for key in ("tpot", "ttft", "total"):
        figure, value = FIGURES[key], figure_ms(arm, key)
        if value is None:
            continue
        summary = arm["latency"][figure.metric]
        entries.append(
            {
                "name": f"{prefix}/{arm['name']} {figure.name}",
                "unit": UNIT,
                "value": value,
                "range": f"p90 {seconds_to_ms(summary['p90']):.4g}",
                "extra": f"n={summary['n']}",
            }
        )
    return entries


def github_benchmark_entries(results: dict) -> list[dict]:
    """The customSmallerIsBetter list: per-arm latency and peak memory, then 100 - saved per pair."""
    prefix = results["suite"]
    entries: list[dict] = []
    for arm in results["arms"]:
        if arm["status"] != "ok":
            continue
        entries += _latency_entries(prefix, arm)
        peak = (arm["memory"] or {}).get("peak_bytes")
        if peak is not None:
            entries.append(
                {"name": f"{prefix}/{arm['name']} peak memory", "unit": "MiB", "value": peak / (1 << 20)}
            )
    for saving in results["savings"]:
        pair = f"{saving['otter_arm']} vs {saving['separate_arm']} ({baseline_kind(saving['separate_arm'])})"
        for kind in ("space", "time"):
            value = saving[f"extra_{kind}_saved_pct"]
            if value is None:
                continue
            entry = {
                "name": f"{prefix}/{pair} extra {kind} remaining",
                "unit": "% of separate's extra",
                "value": 100.0 - value,
                "extra": f"saved {value:.2f}%",
            }
            ci = saving[f"extra_{kind}_saved_ci95"]
            if ci:
                entry["range"] = f"CI95 {100 - ci[1]:.2f}..{100 - ci[0]:.2f}"
            entries.append(entry)
    return entries
