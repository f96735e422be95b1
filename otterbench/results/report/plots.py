"""Figures rebuilt from results dicts; each function returns a matplotlib Figure.

Figures are built as bare `Figure` objects, never through pyplot: no GUI backend, no global figure list to
leak on headless CI runners, and savefig renders with Agg.

One arm -> colour map (`arm_colour`) is used by every figure so an arm looks the same everywhere.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from otterbench.arms.registry import ARM_NAMES, ARMS

_PALETTE = ["#7f7f7f", "#b2182b", "#ef8a62", "#2166ac", "#762a83", "#c2a5cf", "#1b7837"]
_EXTRA_PALETTE = ["#8c510a", "#01665e", "#d6604d", "#4393c3"]
ARM_COLOURS: dict[str, str] = dict(zip(ARM_NAMES, _PALETTE))  # later arms take the extra palette
BASE_WEIGHTS_COLOUR = "#d9d9d9"
FAILED_COLOUR = "#b2182b"
SWEEP_FIELDS = ("batch_size", "max_new_tokens", "k", "num_prompts", "otter_ratio")


def arm_colour(name: str) -> str:
    """The colour of arm `name` in every figure (arms outside ARM_NAMES get a stable extra colour)."""
    if name in ARM_COLOURS:
        return ARM_COLOURS[name]
    return _EXTRA_PALETTE[sum(name.encode()) % len(_EXTRA_PALETTE)]


def _bytes_scale(max_bytes: float) -> tuple[float, str]:
    """Divisor and unit label so the largest value reads in a sensible unit."""
    return (float(1 << 30), "GiB") if max_bytes >= (1 << 30) else (float(1 << 20), "MiB")


def _mark_failed(ax: Axes, arms: list[dict]) -> None:
    """Write the status in a missing bar's slot and colour its tick label, so failed arms stay visible."""
    for x, (arm, label) in enumerate(zip(arms, ax.get_xticklabels(), strict=True)):
        if arm["status"] != "ok":
            status = arm["status"].replace("_", " ")
            # x in data units, y in axes fraction: readable whatever the y scale (linear or log)
            ax.text(
                x,
                0.03,
                status,
                transform=ax.get_xaxis_transform(),
                rotation=90,
                ha="center",
                va="bottom",
                color=FAILED_COLOUR,
                fontsize=11,
                fontweight="bold",
            )
            label.set_color(FAILED_COLOUR)


def _saving_lines(results: dict, key: str, label: str) -> str:
    lines = []
    for saving in results["savings"]:
        value, ci = saving[key], saving[key.replace("_pct", "_ci95")]
        shown = "n/a (see notes in report.md)" if value is None else f"{value:.1f}%"
        if ci:
            shown += f" [{ci[0]:.1f}, {ci[1]:.1f}]"
        lines.append(f"{saving['otter_arm']} vs {saving['separate_arm']}: {shown}")
    return f"{label} saved by Otter:\n" + "\n".join(lines) if lines else ""


def _annotate(ax: Axes, text: str) -> None:
    if text:
        ax.text(
            0.02,
            0.97,
            text,
            transform=ax.transAxes,
            va="top",
            ha="left",
            fontsize=8,
            bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.9, "edgecolor": "#999999"},
        )


def _setup_arm_axis(ax: Axes, arms: list[dict]) -> None:
    ax.set_xticks(range(len(arms)), [arm["name"] for arm in arms], rotation=25, ha="right")
    ax.set_xlim(-0.6, len(arms) - 0.4)  # keep a slot for every arm, finished or not
    ax.set_xlabel("arm")


def _memory_stack(ax: Axes, x: int, arm: dict, scale: float) -> None:
    """One stacked bar: base weights, separate-model weights, inserted parameters, the rest of the peak."""
    memory = arm["memory"]
    parts = memory.get("weights_by_component") or {
        "base": memory["weights_bytes"],
        "separate": 0,
        "inserted": 0,
    }
    peak = memory["peak_bytes"]
    rest = 0 if peak is None else max(0, peak - memory["weights_bytes"])
    colour = arm_colour(arm["name"])
    stack = [
        (parts["base"], BASE_WEIGHTS_COLOUR, None, 1.0),
        (parts["separate"], colour, None, 1.0),
        (parts["inserted"], colour, "xx", 1.0),
        (rest, colour, "//", 0.35),
    ]
    bottom = 0.0
    for value, face, hatch, alpha in stack:
        ax.bar(
            x,
            value / scale,
            bottom=bottom,
            color=face,
            hatch=hatch,
            alpha=alpha,
            edgecolor="#333333",
            linewidth=0.6,
        )
        bottom += value / scale
    label = "peak not\nmeasured" if peak is None else f"{peak / scale:.3g}"
    ax.annotate(label, (x, bottom), xytext=(0, 3), textcoords="offset points", ha="center", fontsize=8)


def _base_peak(arms: list[dict]) -> int | None:
    for arm in arms:
        if arm["role"] == "base" and arm["status"] == "ok" and arm["memory"]:
            return arm["memory"]["peak_bytes"]
    return None


def _memory_legend(ax: Axes, base_peak: float | None) -> None:
    edge = "#333333"
    handles = [
        Patch(facecolor=BASE_WEIGHTS_COLOUR, edgecolor=edge, label="base LLM weights"),
        Patch(facecolor="#888888", edgecolor=edge, label="separate-model weights (arm colour)"),
        Patch(facecolor="white", edgecolor=edge, hatch="xx", label="Otter inserted parameters (arm colour)"),
        Patch(facecolor="white", edgecolor=edge, hatch="//", label="rest: KV cache, activations, runtime"),
    ]
    if base_peak is not None:
        ax.axhline(base_peak, color=edge, linestyle="--", linewidth=0.8)
        handles.append(Line2D([], [], color=edge, linestyle="--", label="base arm's peak (extra is above)"))
    ax.legend(handles=handles, loc="upper right", fontsize=8)


def plot_memory(results: dict) -> Figure:
    """Peak memory by arm, stacked: base weights, separate-model weights, inserted parameters, the rest."""
    arms = results["arms"]
    heights = [
        (arm["memory"] or {}).get("peak_bytes") or (arm["memory"] or {}).get("weights_bytes") or 0
        for arm in arms
    ]
    scale, unit = _bytes_scale(max(heights, default=0))
    fig = Figure(figsize=(8, 5.5), layout="constrained")
    ax = fig.subplots()
    for x, arm in enumerate(arms):
        if arm["status"] == "ok" and arm["memory"] is not None:
            _memory_stack(ax, x, arm, scale)
    _setup_arm_axis(ax, arms)
    _mark_failed(ax, arms)
    ax.set_ylabel(f"peak memory ({unit})")
    ax.set_title(f"Peak memory by arm ({results['suite']}, {results['config']['device']})")
    ax.set_ylim(0, (max(heights, default=0) / scale or 1) * 1.5)
    base_peak = _base_peak(arms)
    _memory_legend(ax, None if base_peak is None else base_peak / scale)
    _annotate(ax, _saving_lines(results, "extra_space_saved_pct", "Extra space"))
    return fig


def _bar_with_p90(ax: Axes, arms: list[dict], metric: str, scale: float) -> None:
    for x, arm in enumerate(arms):
        if arm["status"] != "ok":
            continue
        summary = arm["latency"][metric]
        if summary["median"] is None:
            continue
        median, p90 = summary["median"] * scale, summary["p90"] * scale
        ax.bar(x, median, color=arm_colour(arm["name"]), edgecolor="#333333", linewidth=0.6)
        ax.errorbar(x, median, yerr=[[0], [p90 - median]], color="black", capsize=4, linewidth=1)
        ax.annotate(
            f"{median:.3g}", (x, p90), xytext=(0, 3), textcoords="offset points", ha="center", fontsize=8
        )


def plot_latency(results: dict) -> Figure:
    """TTFT, per-token latency (p50 bars, p90 whiskers) and total time by arm, extra-time saved annotated."""
    arms = results["arms"]
    fig = Figure(figsize=(14, 5.5), layout="constrained")
    axes = fig.subplots(1, 3)
    panels = [
        ("ttft_s", 1e3, "time to first token (ms)", "Time to first token"),
        ("tpot_s", 1e3, "time per output token (ms)", "Per-token latency"),
        ("total_s", 1.0, "whole workload, one repeat (s)", "Total time"),
    ]
    for ax, (metric, scale, ylabel, title) in zip(axes, panels, strict=True):
        _bar_with_p90(ax, arms, metric, scale)
        _setup_arm_axis(ax, arms)
        _mark_failed(ax, arms)
        ax.set_ylabel(ylabel)
        ax.set_title(f"{title}: median, whisker to p90")
    top = axes[2].get_ylim()[1]
    axes[2].set_ylim(0, top * 1.45)
    _annotate(axes[2], _saving_lines(results, "extra_time_saved_pct", "Extra time (CI95)"))
    fig.suptitle(
        f"Latency by arm ({results['suite']}, {results['config']['device']}, "
        f"{results['config']['repeats']} repeats)"
    )
    return fig


def plot_tpot_distribution(results: dict) -> Figure:
    """Box plot of every per-token latency sample of each arm (whiskers 5th-95th percentile)."""
    arms = results["arms"]
    fig = Figure(figsize=(8, 5.5), layout="constrained")
    ax = fig.subplots()
    data = [
        np.asarray(arm["latency"]["tpot_s"]["samples"]) * 1e3 if arm["status"] == "ok" else np.array([])
        for arm in arms
    ]
    shown = [i for i, samples in enumerate(data) if samples.size]
    if shown:
        boxes = ax.boxplot(
            [data[i] for i in shown],
            positions=shown,
            whis=(5, 95),
            showfliers=False,
            patch_artist=True,
            widths=0.6,
            medianprops={"color": "black"},
        )
        for patch, i in zip(boxes["boxes"], shown, strict=True):
            patch.set_facecolor(arm_colour(arms[i]["name"]))
            patch.set_alpha(0.8)
        low, high = min(data[i].min() for i in shown), max(data[i].max() for i in shown)
        if low > 0 and high / low > 4:  # a faithful separate arm can be 10x slower: keep every box readable
            ax.set_yscale("log")
        for i in shown:
            label = f"median {np.median(data[i]):.3g} ms"
            ax.annotate(
                label,
                (i, np.percentile(data[i], 95)),
                xytext=(0, 4),
                textcoords="offset points",
                ha="center",
                fontsize=8,
            )
    _setup_arm_axis(ax, arms)
    _mark_failed(ax, arms)
    ax.set_ylabel("time per output token (ms" + (", log scale)" if ax.get_yscale() == "log" else ")"))
    ax.set_title(f"Per-token latency distribution ({results['suite']}; box p25-p75, whiskers p5-p95)")
    return fig


def sweep_field(runs: list[dict]) -> str | None:
    """The config field that varies among `runs` (first of SWEEP_FIELDS), or None."""
    for name in SWEEP_FIELDS:
        if len({run["config"].get(name) for run in runs}) > 1:
            return name
    return None


def _extra_cost(run: dict, arm_name: str) -> tuple[float | None, float | None]:
    """(extra total seconds, extra peak bytes) of `arm_name` over base in `run`, None where unavailable."""
    arms = {arm["name"]: arm for arm in run["arms"]}
    base, arm = arms.get("base"), arms.get(arm_name)
    if base is None or arm is None or "ok" != base["status"] or "ok" != arm["status"]:
        return None, None
    time = arm["latency"]["total_s"]["median"] - base["latency"]["total_s"]["median"]
    peaks = [(a["memory"] or {}).get("peak_bytes") for a in (arm, base)]
    return time, (None if None in peaks else peaks[0] - peaks[1])


def plot_cost_growth(runs: list[dict]) -> Figure | None:
    """Extra time and extra memory of each separate/Otter arm against the swept config field, or None."""
    field = sweep_field(runs)
    if field is None:
        return None
    runs = sorted(runs, key=lambda run: run["config"][field])
    xs = [run["config"][field] for run in runs]
    names = [arm["name"] for arm in runs[0]["arms"] if arm["role"] != "base"]
    costs = {name: [_extra_cost(run, name) for run in runs] for name in names}
    scale, unit = _bytes_scale(
        max((abs(m) for c in costs.values() for _, m in c if m is not None), default=0)
    )
    fig = Figure(figsize=(12, 5), layout="constrained")
    ax_time, ax_mem = fig.subplots(1, 2)
    for name in names:
        times = [np.nan if t is None else t for t, _ in costs[name]]
        mems = [np.nan if m is None else m / scale for _, m in costs[name]]
        # faithful arms get big square markers drawn first, so an optimized arm on the same values stays visible
        faithful = ARMS[name].baseline == "faithful" if name in ARMS else False
        style = {
            "color": arm_colour(name),
            "marker": "s" if faithful else "o",
            "markersize": 9 if faithful else 5,
            "linestyle": "--" if faithful else "-",
            "label": name,
        }
        ax_time.plot(xs, times, **style)
        ax_mem.plot(xs, mems, **style)
    for ax, ylabel, title in (
        (ax_time, "extra total time over base (s)", "Extra time"),
        (ax_mem, f"extra peak memory over base ({unit})", "Extra memory"),
    ):
        ax.set_xlabel(field)
        ax.set_ylabel(ylabel)
        ax.set_title(f"{title} vs {field}")
        ax.axhline(0, color="#999999", linewidth=0.8)
        ax.legend(fontsize=8)
    fig.suptitle(f"Cost growth over {len(runs)} runs ({runs[0]['suite']})")
    return fig


def save_figure(fig: Figure, out_dir: Path, stem: str) -> list[Path]:
    """Write `fig` as out_dir/stem.png and .svg and return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.svg"]
    for path in paths:
        fig.savefig(path, dpi=120)
    return paths
