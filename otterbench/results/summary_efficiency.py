"""Terminal tables of why each arm costs what it costs, and of measured vs predicted savings (kept apart from
summary.py's tables so each stays within an 80-column terminal)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from otterbench.results.headline import MIN_REPEATS_FOR_INTERVAL, decode_saving, pct_text, range_notes


def _num(value: float | None, scale: float = 1.0, digits: int = 1) -> str:
    return "-" if value is None else f"{value / scale:,.{digits}f}"


def efficiency_table(results: dict[str, Any]) -> Table | None:
    """Per arm: the planner's MB and MFLOPs per decode step and its bound at the device's ridge point, MBU and
    MFU at its TPOT, the efficiency of its extra work over the base's, and the fixed per-step overhead (TPOT
    p50 minus its roofline at peak)."""
    arms = [arm for arm in results["arms"] if arm.get("efficiency")]
    if not arms:
        return None
    environment = results["environment"]
    bandwidth = (environment.get("memory_bandwidth") or {}).get("peak_bytes_per_s")
    context = arms[0]["efficiency"]["context"]
    title = f"Per decode step (planner, mean context {context}); peak {_num(bandwidth, 1e9)} GB/s"
    ridge = ridge_point(environment)
    if ridge is not None:
        compute = environment["compute_peak"]
        title += f", {_num(compute['peak_flops_per_s'], 1e9)} GFLOP/s {compute['dtype']} (ridge {ridge:.1f} FLOP/B)"
    table = Table(title=title)
    for column in ("arm", "MB/step", "MFLOP/step", "bound", "MBU", "MFU", "extra eff.", "overhead ms"):
        table.add_column(column, justify="left" if column == "arm" else "right", no_wrap=True)
    for arm in arms:
        eff = arm["efficiency"]
        table.add_row(
            arm["name"],
            _num(eff["bytes_per_step"], 1e6, 2),
            _num(eff["flops_per_step"], 1e6),
            eff.get("bound", "-"),
            _share(eff.get("mbu")),
            _share(eff.get("mfu")),
            _share(recorded_extra_efficiency(arm)),
            _num(eff.get("overhead_s_per_step"), 1e-3, 2),
        )
    return table


def _share(value: float | None) -> str:
    return pct_text(None if value is None else 100 * value)


def ridge_point(environment: dict[str, Any]) -> float | None:
    """The device's ridge point (FLOPs per byte where compute-bound starts) from a results file's environment
    (or the run's measured peaks, the same keys): peak FLOP/s over peak bytes/s; None unless both were measured."""
    flops = (environment.get("compute_peak") or {}).get("peak_flops_per_s")
    bytes_per_s = (environment.get("memory_bandwidth") or {}).get("peak_bytes_per_s")
    return flops / bytes_per_s if flops and bytes_per_s else None


def recorded_extra_efficiency(arm: dict[str, Any] | None) -> float | None:
    """The share of peak at which an arm did its extra work over the base's (older files: their extra MBU)."""
    efficiency = (arm or {}).get("efficiency") or {}
    return efficiency.get("extra_efficiency", efficiency.get("extra_mbu"))


def _measured(results: dict[str, Any], saving: dict[str, Any]) -> str:
    """The decode-only saving as every reader shows it (headline.decode_saving: interval rules included)."""
    decode = decode_saving(results, saving)
    return pct_text(decode.value, decode.ci)


def savings_vs_predicted_table(results: dict[str, Any]) -> Table | None:
    """Decode (TPOT) and prefill (TTFT) savings measured, beside the planner's limits and its space limit."""
    if not results["savings"]:
        return None
    repeats = results["config"].get("repeats", 0)
    layout = next((s["predicted"]["layout"] for s in results["savings"] if s.get("predicted")), None)
    title = (
        f"Savings measured and their limits (equal efficiency for every arm; {layout} layout)"
        if layout
        else "Savings measured (no limits: the planner prices none of these separate arms)"
    )
    if repeats < MIN_REPEATS_FOR_INTERVAL:
        title += " (not enough repeats for an interval)"
    table = Table(title=title)
    for column in ("vs separate arm", "decode", "limit", "prefill", "limit", "space limit"):
        table.add_column(column, no_wrap=True, justify="left" if column == "vs separate arm" else "right")
    for saving in results["savings"]:
        predicted = saving.get("predicted") or {}
        table.add_row(
            saving["separate_arm"],
            _measured(results, saving),
            pct_text(predicted.get("time_roofline_pct")),
            pct_text(saving.get("extra_prefill_time_saved_pct")),
            pct_text(predicted.get("prefill_pct")),
            pct_text(predicted.get("space_pct")),
        )
    return table


def _efficiency_text(arm: dict[str, Any] | None) -> str:
    return f"extra efficiency {_share(recorded_extra_efficiency(arm))}"


# per figure: its measured and limit fields, and why a measured saving can exceed its limit (the limits price
# every arm at equal efficiency)
_ABOVE_LIMIT = {
    "decode": (
        "extra_decode_time_saved_pct",
        "time_roofline_pct",
        "{separate} did its extra work (bytes, or FLOPs where compute-bound) at a lower share of the device's "
        "peak ({separate_efficiency}) than {otter} ({otter_efficiency})",
    ),
    "prefill": (
        "extra_prefill_time_saved_pct",
        "prefill_pct",
        "{separate} did its extra prompt work at a lower share of the device's peak than {otter} did its own "
        "(per-call costs the prefill limit does not price: prefill efficiency is not measured per arm)",
    ),
    "space": (
        "extra_space_saved_pct",
        "space_pct",
        "{separate} held more beyond its weights and KV cache (activations, allocator and runtime buffers, "
        "which the space limit does not price) relative to its extra than {otter} did",
    ),
}


def _above_limit_notes(saving: dict[str, Any], arms: dict[str, Any]) -> list[str]:
    """One line per measured saving above its limit (decode with both arms' extra efficiencies)."""
    predicted, separate, otter = saving.get("predicted") or {}, saving["separate_arm"], saving["otter_arm"]
    names = {
        "separate": separate,
        "otter": otter,
        "separate_efficiency": _efficiency_text(arms.get(separate)),
        "otter_efficiency": _efficiency_text(arms.get(otter)),
    }
    notes = []
    for kind, (measured_key, limit_key, why) in _ABOVE_LIMIT.items():
        measured, limit = saving.get(measured_key), predicted.get(limit_key)
        if measured is None or limit is None or measured <= limit:
            continue
        notes.append(
            f"{separate}: the measured {kind} saving {measured:.1f}% is above its limit {limit:.1f}%: "
            + why.format_map(names)
        )
    return notes


def limit_notes(results: dict[str, Any]) -> list[str]:
    """Every layout's limits, each measured saving above its limit said with why, and a prefill saving
    outside [0, 100] read as the summary reads the others."""
    arms = {arm["name"]: arm for arm in results["arms"]}
    notes = []
    for saving in results["savings"]:
        predicted, separate = saving.get("predicted") or {}, saving["separate_arm"]
        layouts = "; ".join(
            f"{name} decode {pct_text(limits['time_roofline_pct'])}, prefill {pct_text(limits['prefill_pct'])}, "
            f"space {pct_text(limits['space_pct'])}"
            for name, limits in (predicted.get("by_layout") or {}).items()
        )
        if layouts:
            notes.append(f"{separate} limits by layout: {layouts}")
        notes += _above_limit_notes(saving, arms)
        prefill = saving.get("extra_prefill_time_saved_pct")
        notes += [f"{separate}, prefill: {n}" for n in range_notes(prefill, None, "TTFT")] if prefill else []
    return notes


def print_efficiency(console: Console, results: dict[str, Any]) -> None:
    """Print both tables (each only when the run has its figures) and the limits' notes."""
    for table in (efficiency_table(results), savings_vs_predicted_table(results)):
        if table is not None:
            console.print(table)
    for note in limit_notes(results):
        console.print(f"[yellow]{note}[/]")
