"""Per-run figures of memory and latency by arm, rebuilt from a results dict; each returns a Figure.

Memory is drawn as the extra over the base arm's peak (the cost the paper is about), with totals written on
the bars; latency bars are medians with a p10-p90 whisker around them and the sample count under each arm.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from otterbench.results.report.growth import SWEEP_FIELDS, plot_cost_growth, sweep_field  # noqa: F401
from otterbench.results.report.style import (
    EDGE_COLOUR,
    PLAIN_TICKS,
    arm_colour,
    arm_tick_labels,
    bytes_scale,
    mark_failed,
    run_caption,
    save_figure,  # noqa: F401  (re-exported for callers of the earlier single module)
    setup_arm_axis,
    short_number,
)


def _base_arm(arms: list[dict]) -> dict | None:
    return next((a for a in arms if a["role"] == "base" and a["status"] == "ok" and a["memory"]), None)


def _extra_weights(memory: dict) -> int:
    """Weights an arm holds beyond the base LLM's: the separate model(s) or Otter's inserted parameters."""
    parts = memory.get("weights_by_component")
    return parts["separate"] + parts["inserted"] if parts else 0


def _memory_bar(ax: Axes, x: int, arm: dict, base_peak: int, scale: float) -> None:
    """Extra peak over base as a bar, its extra-weights part drawn solid inside it."""
    memory = arm["memory"]
    extra = memory["peak_bytes"] - base_peak
    weights = _extra_weights(memory)
    colour = arm_colour(arm["name"])
    ax.bar(x, extra / scale, color=colour, alpha=0.35, hatch="//", edgecolor=EDGE_COLOUR, linewidth=0.6)
    ax.bar(x, weights / scale, width=0.5, color=colour, edgecolor=EDGE_COLOUR, linewidth=0.6)
    label = f"{extra / scale:+,.1f}\n(peak {short_number(memory['peak_bytes'] / scale)})"
    ax.annotate(
        label,
        (x, max(extra, weights, 0) / scale),
        xytext=(0, 3),
        textcoords="offset points",
        ha="center",
        fontsize=8,
    )


def plot_memory(results: dict) -> Figure:
    """Extra peak memory of each arm over the base arm's peak, its extra weights drawn inside the bar."""
    arms = results["arms"]
    fig = Figure(figsize=(8, 5.5), layout="constrained")
    ax = fig.subplots()
    base = _base_arm(arms)
    peaks = [a["memory"]["peak_bytes"] for a in arms if a["status"] == "ok" and a["memory"]]
    scale, unit = bytes_scale(max(peaks, default=0))
    method = next((a["memory"]["method"] for a in arms if a.get("memory")), "-")
    if base is None or base["memory"]["peak_bytes"] is None:
        ax.text(0.5, 0.5, "no base arm peak: no extra to draw", ha="center", transform=ax.transAxes)
        base_peak = None
    else:
        base_peak = base["memory"]["peak_bytes"]
        for x, arm in enumerate(arms):
            if arm is not base and arm["status"] == "ok" and arm["memory"] and arm["memory"]["peak_bytes"]:
                _memory_bar(ax, x, arm, base_peak, scale)
        ax.annotate(
            f"zero line =\nbase peak\n{short_number(base_peak / scale)} {unit}",
            (arms.index(base), 0),
            xytext=(0, 4),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
    setup_arm_axis(ax, arms)
    mark_failed(ax, arms)
    ax.axhline(0, color=EDGE_COLOUR, linewidth=0.8)
    ax.margins(y=0.25)
    ax.yaxis.set_major_formatter(PLAIN_TICKS)
    ax.set_ylabel(f"peak memory over the base arm's ({unit}, {method})")
    ax.set_title(f"Extra peak memory over base\n{run_caption(results)}", fontsize=10)
    handles = [
        Patch(
            facecolor="#888888",
            edgecolor=EDGE_COLOUR,
            label="extra weights: separate model(s) or Otter's inserted parameters",
        ),
        Patch(
            facecolor="#888888",
            alpha=0.35,
            hatch="//",
            edgecolor=EDGE_COLOUR,
            label="extra peak: weights + KV cache, activations, runtime",
        ),
    ]
    ax.legend(handles=handles, loc="upper right", fontsize=8)
    return fig


def _percentiles(arm: dict, metric: str, scale: float) -> tuple[float, float, float] | None:
    """(p10, median, p90) of an arm's samples of `metric`, scaled; None when it has none."""
    if arm["status"] != "ok" or not arm["latency"] or not arm["latency"][metric]["samples"]:
        return None
    p10, p50, p90 = np.percentile(np.asarray(arm["latency"][metric]["samples"]) * scale, [10, 50, 90])
    return float(p10), float(p50), float(p90)


def _latency_panel(ax: Axes, arms: list[dict], metric: str) -> None:
    """Median bars with a p10-p90 whisker, or each repeat as a dot where there are few samples."""
    for x, arm in enumerate(arms):
        stats = _percentiles(arm, metric, 1e3)
        if stats is None:
            continue
        p10, median, p90 = stats
        ax.bar(x, median, color=arm_colour(arm["name"]), edgecolor=EDGE_COLOUR, linewidth=0.6)
        samples = np.asarray(arm["latency"][metric]["samples"]) * 1e3
        if samples.size < 10:  # a p10-p90 of three repeats is their min and max: show the repeats
            ax.plot(np.full(samples.size, x), samples, "o", color="black", markersize=3)
            top = samples.max()
        else:
            ax.errorbar(x, median, yerr=[[median - p10], [p90 - median]], color="black", capsize=4)
            top = p90
        ax.annotate(
            short_number(median), (x, top), xytext=(0, 3), textcoords="offset points", ha="center", fontsize=8
        )
    base = next((a for a in arms if a["role"] == "base" and _percentiles(a, metric, 1e3)), None)
    if base is not None:
        ax.axhline(_percentiles(base, metric, 1e3)[1], color=EDGE_COLOUR, linestyle="--", linewidth=0.8)


def plot_latency(results: dict) -> Figure:
    """TTFT, per-token latency and total time by arm: median bars, p10-p90 whiskers, n under each arm."""
    arms = results["arms"]
    fig = Figure(figsize=(14, 5.5), layout="constrained")
    axes = fig.subplots(1, 3)
    panels = [
        ("ttft_s", "time to first token (ms)", "Time to first token"),
        ("tpot_s", "time per output token (ms)", "Per-token latency"),
        ("total_s", "whole workload, one repeat (ms)", "Total time per repeat"),
    ]
    for ax, (metric, ylabel, title) in zip(axes, panels, strict=True):
        _latency_panel(ax, arms, metric)
        setup_arm_axis(ax, arms, arm_tick_labels(arms, metric))
        mark_failed(ax, arms)
        ax.yaxis.set_major_formatter(PLAIN_TICKS)
        ax.margins(y=0.15)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
    handles = [
        Patch(facecolor="#bbbbbb", edgecolor=EDGE_COLOUR, label="bar: median"),
        Line2D([], [], color="black", marker="_", markersize=10, label="whisker: p10-p90 of the n samples"),
        Line2D(
            [],
            [],
            color="black",
            marker="o",
            linestyle="none",
            markersize=3,
            label="dots: every sample (fewer than 10)",
        ),
        Line2D([], [], color=EDGE_COLOUR, linestyle="--", label="base arm's median"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=8, frameon=False)
    fig.suptitle(f"Latency by arm ({run_caption(results)})")
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
            ax.annotate(
                f"median {short_number(float(np.median(data[i])))} ms",
                (i, np.percentile(data[i], 95)),
                xytext=(0, 4),
                textcoords="offset points",
                ha="center",
                fontsize=8,
            )
    setup_arm_axis(ax, arms, arm_tick_labels(arms, "tpot_s"))
    mark_failed(ax, arms)
    ax.yaxis.set_major_formatter(PLAIN_TICKS)
    ax.yaxis.set_minor_formatter(PLAIN_TICKS)
    ax.tick_params(axis="y", which="minor", labelsize=7)
    ax.set_ylabel("time per output token (ms" + (", log scale)" if ax.get_yscale() == "log" else ")"))
    ax.set_title(f"Per-token latency: box p25-p75, whiskers p5-p95\n{run_caption(results)}", fontsize=10)
    return fig
