"""The terminal summary of a run: one row per arm, Otter's savings against each separate-model arm."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from otterbench.results.summary_accel import speculation_table


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.1f} MiB"


def _ms(summary: dict[str, Any] | None, key: str = "median") -> str:
    return "-" if not summary or summary.get("n", 0) == 0 else f"{summary[key] * 1e3:,.2f}"


def _pct(value: float | None, ci: list[float] | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}%" + (f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "")


def non_disruption_line(results: dict[str, Any]) -> str:
    """`non-disruption: exact (split layout)` or the measured deviation."""
    nd = results["non_disruption"]
    if nd.get("exact") is None:
        return "non-disruption: not measured (no Otter arm ran)"
    if nd["exact"]:
        return f"non-disruption: exact ({nd['layout']} layout, logits torch.equal to the base model's)"
    return (
        f"non-disruption: max |Δlogit| {nd['max_abs_logit_diff']:.2e}, argmax agreement "
        f"{100 * nd['argmax_agreement']:.1f}% ({nd['layout']} layout)"
    )


def _arms_table(results: dict[str, Any]) -> Table:
    memory_method = next((a["memory"]["method"] for a in results["arms"] if a.get("memory")), "-")
    table = Table(title=f"{results['suite']} — {results['run_id']} ({results['status']})")
    columns = (
        "arm",
        f"peak mem ({memory_method})",
        "weights",
        "TTFT ms",
        "TPOT p50 ms",
        "TPOT p90 ms",
        "total ms",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "arm" else "right", no_wrap=True)
    for arm in results["arms"]:
        latency, memory = arm.get("latency") or {}, arm.get("memory") or {}
        name = arm["name"] if arm["status"] == "ok" else f"{arm['name']} [red]({arm['status']})[/]"
        table.add_row(
            name,
            _mib(memory.get("peak_bytes")),
            _mib(memory.get("weights_bytes")),
            _ms(latency.get("ttft_s")),
            _ms(latency.get("tpot_s")),
            _ms(latency.get("tpot_s"), "p90"),
            _ms(latency.get("total_s")),
        )
    return table


def _savings_table(results: dict[str, Any]) -> Table:
    table = Table(
        title="Otter's savings of the separate model's extra cost (CI95 from bootstrap over repeats)"
    )
    for column in ("Otter arm", "vs separate arm", "extra space saved", "extra time saved"):
        table.add_column(column, no_wrap=True)
    for saving in results["savings"]:
        table.add_row(
            saving["otter_arm"],
            saving["separate_arm"],
            _pct(saving["extra_space_saved_pct"], saving.get("extra_space_saved_ci95")),
            _pct(saving["extra_time_saved_pct"], saving.get("extra_time_saved_ci95")),
        )
    return table


def print_summary(console: Console, results: dict[str, Any], run_dir: Path | None = None) -> None:
    """Print the per-arm table, the savings table and the non-disruption verdict."""
    console.print(_arms_table(results))
    if results["savings"]:
        console.print(_savings_table(results))
    speculation = speculation_table(results)
    if speculation is not None:
        console.print(speculation)
    console.print(non_disruption_line(results))
    otter = results.get("otter") or {}
    if otter.get("distilled") is False:
        console.print("Otter weights: undistilled (cost is what is measured; the signal is not trained)")
    elif otter.get("distilled"):
        console.print(f"Otter weights: distilled ({otter.get('path')})")
    for saving in results["savings"]:
        for note in saving.get("notes", []):
            console.print(f"[yellow]{saving['separate_arm']}:[/] {note}")
    if run_dir is not None:
        console.print(f"results: {run_dir}/results.json, arms.csv  (plots: otterbench report {run_dir})")
