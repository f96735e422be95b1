"""The terminal summary of a run: one row per arm, Otter's savings against each separate-model arm."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from otterbench.results.decisions import decisions_line
from otterbench.results.disruption_verdict import DISRUPTED, EXACT, WITHIN, verdict_of, was_measured
from otterbench.results.figures import FIGURES, figure_ms, ms_text
from otterbench.results.headline import (
    SavingView,
    decode_saving,
    space_saving,
    speedup_lines,
    time_saving,
)
from otterbench.results.summary_accel import speculation_table
from otterbench.results.summary_efficiency import print_efficiency


def _mib(value: float | None, unit: str = " MiB") -> str:
    return "-" if value is None else f"{value / 2**20:,.1f}{unit}"


_VERDICT_TEXT = {
    EXACT: "exact",
    WITHIN: "within the base's own numerics",
    DISRUPTED: "DISRUPTED",
    None: "not judged (no yardstick recorded)",
}


def _change_name(name: str, change: dict[str, Any]) -> str:
    """`batch composition`, `engine eager vs compiled` (the engines the change set against each other)."""
    engines = change.get("engines")
    return name.replace("_", " ") + (f" {engines[0]} vs {engines[1]}" if engines else "")


def _yardstick_text(nd: dict[str, Any]) -> str:
    """The base against itself under harmless changes, and Otter's ratio to it."""
    yardstick = nd.get("yardstick")
    if not yardstick:
        return "no yardstick"
    changes = ", ".join(_change_name(name, change) for name, change in yardstick["changes"].items())
    ratio = nd.get("ratio_to_yardstick")
    ratio_text = "" if ratio is None or nd.get("exact") else f"; Otter/base {ratio:.2f}x"
    if "token_agreement" in yardstick:  # judged on tokens (a generate-level backend)
        return f"base vs itself ({changes}) {_tokens_text(yardstick)}{ratio_text}"
    return (
        f"base vs itself ({changes}) max |Δlogit| {yardstick['max_abs_logit_diff']:.2e}, "
        f"argmax {100 * yardstick['argmax_agreement']:.1f}%{ratio_text}"
    )


def _tokens_text(compared: dict[str, Any]) -> str:
    """Greedy tokens kept with the reference (before each prompt's first divergence) and |Δlogprob|."""
    text = f"{100 * compared['token_agreement']:.1f}% of greedy tokens agree "
    text += f"({compared['rows_identical']}/{compared['rows']} prompts identical)"
    deviation = compared.get("max_abs_logprob_diff")
    return text if deviation is None else f"{text}, max |Δlogprob| {deviation:.2e}"


def _otter_text(nd: dict[str, Any]) -> str:
    if nd.get("judged_on", "logits") != "logits":
        return f"under {nd.get('backend')}, {_tokens_text(nd)}"
    if nd["exact"]:
        return "logits torch.equal"
    return f"max |Δlogit| {nd['max_abs_logit_diff']:.2e}, argmax {100 * nd['argmax_agreement']:.1f}%"


def non_disruption_line(results: dict[str, Any]) -> str:
    """The verdict (exact, within the base's own numerics, disrupted) with Otter's deviation beside the
    base's own under harmless changes (its yardstick), the layout and the greedy tokens: one line."""
    nd = results["non_disruption"]
    if not was_measured(nd):
        return f"non-disruption: not measured ({nd.get('reason', 'no Otter arm ran')})"
    scope = nd.get("scope", "first batch's prompt positions")
    tokens = {
        True: "greedy tokens identical to the base arm's",
        False: "greedy tokens differ from the base arm's",
    }
    greedy = tokens.get(nd.get("greedy_tokens_identical"), "greedy tokens not compared (no base arm)")
    return (
        f"non-disruption: {_VERDICT_TEXT[verdict_of(nd)]} over the {scope} ({nd['layout']} layout): Otter "
        f"{_otter_text(nd)}; {_yardstick_text(nd)}; {greedy}"
        + (f" (verdict rule, {nd['criterion']})" if nd.get("criterion") and not nd["exact"] else "")
    )


def engine_lines(results: dict[str, Any]) -> list[str]:
    """`engine: compiled (compile s: base 12.1, ...)` and one line per arm that ran another engine."""
    asked = results.get("config", {}).get("engine")
    ran = [arm for arm in results["arms"] if arm.get("engine")]
    if asked is None or not ran:
        return []
    compiled = [f"{arm['name']} {arm['compile_s']:.1f}" for arm in ran if arm.get("compile_s") is not None]
    head = f"engine: {asked}" + (
        f" (compile s, excluded from timings: {', '.join(compiled)})" if compiled else ""
    )
    return [head] + [
        f"[yellow]{arm['name']}:[/] {arm['engine_note']}" for arm in ran if arm.get("engine_note")
    ]


# below this many columns the tables drop the weights, TTFT and energy columns and wrap cells
NARROW_WIDTH = 100


def _arms_table(results: dict[str, Any], narrow: bool) -> Table:
    memory_method = next((a["memory"]["method"] for a in results["arms"] if a.get("memory")), "-")
    table = Table(title=f"{results['suite']} — {results['run_id']} ({results['status']})")
    columns = {
        "arm": "arm",
        "peak": f"peak MiB ({memory_method})" if narrow else f"peak mem ({memory_method})",
        "weights": "weights",
        **{key: FIGURES[key].label for key in ("ttft", "tpot", "tpot_p90", "total")},
    }
    if narrow:
        del columns["weights"], columns["ttft"]
    if not narrow and any(_j_per_token(arm) is not None for arm in results["arms"]):  # NVML; CPU: RAPL
        columns["energy"] = "J/token"
    for key, header in columns.items():
        table.add_column(header, justify="left" if key == "arm" else "right", no_wrap=key != "arm")
    for arm in results["arms"]:
        memory = arm.get("memory") or {}
        name = arm["name"] if arm["status"] == "ok" else f"{arm['name']} [red]({arm['status']})[/]"
        cells = {
            "arm": name,
            "peak": _mib(memory.get("peak_bytes"), "" if narrow else " MiB"),
            "weights": _mib(memory.get("weights_bytes")),
            **{key: ms_text(figure_ms(arm, key)) for key in ("ttft", "tpot", "tpot_p90", "total")},
            "energy": "-" if _j_per_token(arm) is None else f"{_j_per_token(arm):.3g}",
        }
        table.add_row(*(cells[key] for key in columns))
    return table


def _j_per_token(arm: dict[str, Any]) -> float | None:
    return (arm.get("energy") or {}).get("j_per_token")


def _savings_views(results: dict[str, Any]) -> list[tuple[dict, SavingView, SavingView]]:
    return [(s, space_saving(results, s), time_saving(results, s)) for s in results["savings"]]


def _print_speedups(console: Console, results: dict[str, Any]) -> None:
    """A speculative run leads with each arm's speedup over base (slower arms called slower)."""
    for line in speedup_lines(results):
        style = "red" if "SLOWER" in line else None
        console.print(f"speculative decoding: {line}", style=style, markup=False, highlight=False)


def _savings_table(results: dict[str, Any], narrow: bool) -> Table:
    table = Table(
        title="Otter's savings of the separate model's extra cost (time: CI95, BCa bootstrap over repeats)"
    )
    pair = "vs separate arm" if narrow else "Otter arm vs separate arm"
    table.add_column(pair, no_wrap=not narrow)
    table.add_column("extra space saved", justify="right")
    table.add_column("extra time saved")
    for saving, space, time in _savings_views(results):
        name = saving["separate_arm"] if narrow else f"{saving['otter_arm']} vs {saving['separate_arm']}"
        table.add_row(name, space.text, time.text)
    return table


def _print_notes(console: Console, results: dict[str, Any]) -> None:
    """Every caveat of a saving (no interval, outside [0, 100], too wide) and the run's own notes."""
    for saving, space, time in _savings_views(results):
        recorded = [n for n in saving.get("notes", []) if n not in space.notes + time.notes]
        decode = decode_saving(results, saving).notes
        for label, notes in (
            ("space", space.notes),
            ("time", time.notes),
            ("decode", decode),
            ("", recorded),
        ):
            for note in notes:
                console.print(f"[yellow]{saving['separate_arm']}{', ' + label if label else ''}:[/] {note}")


def print_summary(console: Console, results: dict[str, Any], run_dir: Path | None = None) -> None:
    """Print the per-arm table, the savings table and the non-disruption verdict."""
    narrow = console.width < NARROW_WIDTH
    _print_speedups(console, results)
    console.print(_arms_table(results, narrow))
    if results["savings"]:
        console.print(_savings_table(results, narrow))
    speculation = speculation_table(results)
    if speculation is not None:
        console.print(speculation)
    print_efficiency(console, results)
    console.print(non_disruption_line(results))
    decisions = decisions_line(results)
    if decisions is not None:
        console.print(decisions[0], style="yellow" if decisions[1] else None, markup=False, highlight=False)
    for line in engine_lines(results):
        console.print(line)
    otter = results.get("otter") or {}
    if otter.get("distilled") is False:
        console.print("Otter weights: undistilled (cost is what is measured; the signal is not trained)")
    elif otter.get("distilled"):
        console.print(f"Otter weights: distilled ({otter.get('path')})")
    _print_notes(console, results)
    for line in results.get("config", {}).get("skipped_arms", []):
        console.print(line, style="yellow", markup=False, highlight=False)
    if run_dir is not None:
        console.print(f"results: {run_dir}/results.json, arms.csv  (plots: otterbench report {run_dir})")
