"""Cost growth over several runs: extra time, extra memory and Otter's saving against the swept field."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from otterbench.arms.registry import ARMS
from otterbench.results.headline import PAPER_SAVED_PCT, space_saving, time_saving
from otterbench.results.report.savings_figure import (
    PAPER_STYLE,
    extra_space,
    extra_time,
    median_extra_time,
)
from otterbench.results.report.style import PLAIN_TICKS, arm_colour, bytes_scale, device_label

SWEEP_FIELDS = ("batch_size", "max_new_tokens", "k", "num_prompts", "otter_ratio")


def sweep_field(runs: list[dict]) -> str | None:
    """The config field that varies among `runs` (first of SWEEP_FIELDS), or None."""
    for name in SWEEP_FIELDS:
        if len({run["config"].get(name) for run in runs}) > 1:
            return name
    return None


def _style(name: str) -> dict:
    # faithful arms get big square markers, so an optimized arm on the same values stays visible
    faithful = name in ARMS and ARMS[name].baseline == "faithful"
    return {
        "color": arm_colour(name),
        "marker": "s" if faithful else "o",
        "markersize": 8 if faithful else 5,
        "linestyle": "--" if faithful else "-",
        "label": name,
        "capsize": 3,
    }


def _time_panel(ax: Axes, runs: list[dict], xs: list, names: list[str]) -> None:
    """Median per-repeat extra time per run, whiskers min-max over the repeats."""
    for name in names:
        arms = [{a["name"]: a for a in run["arms"]} for run in runs]
        extras = [extra_time(by_name, name) for by_name in arms]
        medians = [median_extra_time(by_name, name) for by_name in arms]
        mid = np.array([np.nan if m is None else m for m in medians])
        low = np.array([mid[i] - e.min() if e.size else np.nan for i, e in enumerate(extras)])
        high = np.array([e.max() - mid[i] if e.size else np.nan for i, e in enumerate(extras)])
        ax.errorbar(xs, mid * 1e3, yerr=[low * 1e3, high * 1e3], **_style(name))
    ax.set_ylabel("extra total time over base (ms per repeat)")
    ax.set_title("Extra time (difference of medians, whiskers min-max of repeats)", fontsize=10)


def _memory_panel(ax: Axes, runs: list[dict], xs: list, names: list[str]) -> None:
    by_run = [{n: extra_space({a["name"]: a for a in run["arms"]}, n) for n in names} for run in runs]
    scale, unit = bytes_scale(max((abs(v) for d in by_run for v in d.values() if v is not None), default=0))
    for name in names:
        values = [np.nan if d[name] is None else d[name] / scale for d in by_run]
        style = {k: v for k, v in _style(name).items() if k != "capsize"}
        ax.plot(xs, values, **style)
    ax.set_ylabel(f"extra peak memory over base ({unit})")
    ax.set_title("Extra memory (one reading per arm)", fontsize=10)


def _saved_panel(ax: Axes, runs: list[dict], xs: list) -> None:
    """Extra time saved with its CI95 (where the repeats support one) and extra space saved, per pair."""
    pairs = sorted({s["separate_arm"] for run in runs for s in run["savings"]})
    for separate in pairs:
        savings = [next((s for s in run["savings"] if s["separate_arm"] == separate), None) for run in runs]
        times = [None if s is None else time_saving(run, s) for run, s in zip(runs, savings, strict=True)]
        mid = np.array([np.nan if v is None or v.value is None else v.value for v in times])
        err = np.array([[m - v.ci[0], v.ci[1] - m] if v and v.ci else [0, 0] for m, v in zip(mid, times)])
        ax.errorbar(xs, mid, yerr=err.T, **{**_style(separate), "label": f"time vs {separate}"})
        spaces = [None if s is None else space_saving(run, s).value for run, s in zip(runs, savings)]
        ax.plot(
            xs,
            [np.nan if v is None else v for v in spaces],
            color=arm_colour(separate),
            marker="x",
            linestyle=":",
            label=f"space vs {separate}",
        )
    for kind, pct in PAPER_SAVED_PCT.items():
        ax.axhline(pct, **PAPER_STYLE)
        ax.annotate(
            f"paper {kind} {pct}%",
            (0, pct),
            xycoords=("axes fraction", "data"),
            fontsize=7,
            xytext=(2, 2),
            textcoords="offset points",
        )
    ax.set_ylabel("saved (% of the separate arm's extra)")
    ax.set_title("Otter's saving (time: CI95 where repeats allow)", fontsize=10)


def plot_cost_growth(runs: list[dict]) -> Figure | None:
    """Extra time, extra memory and Otter's saving against the swept config field, or None."""
    field = sweep_field(runs)
    if field is None:
        return None
    runs = sorted(runs, key=lambda run: run["config"][field])
    xs = [run["config"][field] for run in runs]
    names = [arm["name"] for arm in runs[0]["arms"] if arm["role"] != "base"]
    fig = Figure(figsize=(15, 5.5), layout="constrained")
    ax_time, ax_mem, ax_saved = fig.subplots(1, 3)
    _time_panel(ax_time, runs, xs, names)
    _memory_panel(ax_mem, runs, xs, names)
    _saved_panel(ax_saved, runs, xs)
    integer = all(isinstance(x, int) for x in xs)
    for ax in (ax_time, ax_mem, ax_saved):
        ax.set_xlabel(field)
        if integer and len(xs) <= 12:  # batch sizes and token counts have no 1.5: tick every point
            ax.set_xticks(xs)
        elif integer:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_formatter(PLAIN_TICKS)
        ax.axhline(0, color="#999999", linewidth=0.8)
        if ax.get_legend_handles_labels()[0]:  # a sweep without an Otter arm has no saving to label
            ax.legend(fontsize=7)
    layouts = sorted({(run.get("otter") or {}).get("layout") or "-" for run in runs})
    fig.suptitle(
        f"Cost growth over {len(runs)} runs ({runs[0]['suite']} on {device_label(runs[0])}, "
        f"{'/'.join(layouts)} layout, {runs[0]['config']['repeats']} repeats)"
    )
    return fig
