"""The side-by-side comparison of two runs (`otterbench compare`): per-arm metrics and savings, with B/A."""

from __future__ import annotations

import pandas as pd

from otterbench.results.figures import FIGURES, figure_ms
from otterbench.results.files import arm_by_name

# the figures every reader shows (otterbench.results.figures), in their unit, named alike
_COMPARE_FIGURES = ("ttft", "tpot", "tpot_p90", "total")


def _arm_metrics(arm: dict | None) -> dict[str, float | None]:
    labels = [FIGURES[key].label for key in _COMPARE_FIGURES]
    if arm is None or arm["status"] != "ok":
        return dict.fromkeys([*labels, "peak (MiB)"])
    values = {FIGURES[key].label: figure_ms(arm, key) for key in _COMPARE_FIGURES}
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
