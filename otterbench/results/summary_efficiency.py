"""Terminal tables of why each arm costs what it costs, and of measured vs predicted savings (kept apart from
summary.py's tables so each stays within an 80-column terminal)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from otterbench.results.headline import MIN_REPEATS_FOR_INTERVAL, pct_text, shown_interval


def _num(value: float | None, scale: float = 1.0, digits: int = 1) -> str:
    return "-" if value is None else f"{value / scale:,.{digits}f}"


def efficiency_table(results: dict[str, Any]) -> Table | None:
    """Per arm: the planner's MB and MFLOPs per decode step, the bandwidth its TPOT implies, and MBU."""
    arms = [arm for arm in results["arms"] if arm.get("efficiency")]
    if not arms:
        return None
    bandwidth = (results["environment"].get("memory_bandwidth") or {}).get("peak_bytes_per_s")
    context = arms[0]["efficiency"]["context"]
    title = f"Per decode step (planner, mean context {context}); peak bandwidth {_num(bandwidth, 1e9)} GB/s"
    table = Table(title=title)
    for column in ("arm", "MB/step", "MFLOP/step", "GB/s", "MBU"):
        table.add_column(column, justify="left" if column == "arm" else "right", no_wrap=True)
    for arm in arms:
        eff = arm["efficiency"]
        mbu = None if eff["mbu"] is None else 100 * eff["mbu"]
        table.add_row(
            arm["name"],
            _num(eff["bytes_per_step"], 1e6, 2),
            _num(eff["flops_per_step"], 1e6),
            _num(eff["achieved_bytes_per_s"], 1e9, 2),
            pct_text(mbu),
        )
    return table


def savings_vs_predicted_table(results: dict[str, Any]) -> Table | None:
    """Decode-only (TPOT) savings measured, beside the planner's predicted space and time savings."""
    if not results["savings"]:
        return None
    repeats = results["config"].get("repeats", 0)
    title = "Decode-only savings (TPOT, CI95 over repeats) and the planner's prediction"
    if repeats < MIN_REPEATS_FOR_INTERVAL:
        title += " (not enough repeats for an interval)"
    table = Table(title=title)
    for column in ("vs separate arm", "decode time saved", "pred. space", "pred. time (bytes)"):
        table.add_column(column, no_wrap=True)
    for saving in results["savings"]:
        predicted = saving.get("predicted") or {}
        value = saving.get("extra_decode_time_saved_pct")
        ci = (
            None
            if value is None
            else shown_interval(value, saving.get("extra_decode_time_saved_ci95"), repeats)
        )
        table.add_row(
            saving["separate_arm"],
            pct_text(value, ci),
            pct_text(predicted.get("space_pct")),
            pct_text(predicted.get("time_bytes_pct")),
        )
    return table


def print_efficiency(console: Console, results: dict[str, Any]) -> None:
    """Print both tables (each only when the run has its figures)."""
    for table in (efficiency_table(results), savings_vs_predicted_table(results)):
        if table is not None:
            console.print(table)
