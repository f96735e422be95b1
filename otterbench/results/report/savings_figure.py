"""The first figure of a report: what each separate-model arm adds over base beside what Otter adds.

Top row: the extra over base (peak memory, total time) of each separate arm and of its Otter arm, with the
level Otter's bar would reach at the paper's and the planner's savings marked on Otter's slot. Bottom row:
the share saved with its CI95, against the paper's 86.5% / 98.5% and the planner's prediction.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from otterbench.results.headline import (
    PAPER_SAVED_PCT,
    SavingView,
    predicted_pct,
    space_saving,
    time_saving,
)
from otterbench.results.reference import reference_arm
from otterbench.results.report.style import (
    EDGE_COLOUR,
    FAILED_COLOUR,
    PLAIN_TICKS,
    arm_colour,
    bytes_scale,
    run_caption,
    short_number,
)

PAPER_STYLE = {"color": "black", "linestyle": ":", "linewidth": 1.6}
PLANNER_STYLE = {"color": "#1b7837", "linestyle": "-.", "linewidth": 1.6}
_HALF = 0.2  # half the distance between a separate arm's bar and its Otter arm's bar


def _ok(arm: dict | None) -> bool:
    return arm is not None and arm["status"] == "ok"


def extra_space(arms: dict, name: str) -> float | None:
    base, arm = reference_arm(arms), arms.get(name)
    if not (_ok(base) and _ok(arm) and base["memory"] and arm["memory"]):
        return None
    peaks = base["memory"]["peak_bytes"], arm["memory"]["peak_bytes"]
    return None if None in peaks else float(peaks[1] - peaks[0])


def extra_time(arms: dict, name: str) -> np.ndarray:
    """Per-repeat extra total time over base, repeat i against base's repeat i (the same round when the
    schedule interleaves arms): shape [n]; empty when either arm did not finish."""
    base, arm = reference_arm(arms), arms.get(name)
    if not (_ok(base) and _ok(arm)):
        return np.array([])
    b, a = (np.asarray(x["latency"]["total_s"]["samples"]) for x in (base, arm))
    n = min(b.size, a.size)
    return a[:n] - b[:n]


def median_extra_time(arms: dict, name: str) -> float | None:
    """median(arm's total time) - median(base's): the extra the saving is computed from, in seconds."""
    if extra_time(arms, name).size == 0:
        return None
    base, arm = (
        float(np.median(x["latency"]["total_s"]["samples"])) for x in (reference_arm(arms), arms[name])
    )
    return arm - base


def _mark(ax: Axes, x: float, level: float, style: dict) -> None:
    ax.hlines(level, x - _HALF * 0.9, x + _HALF * 0.9, **style)


def _extra_values(results: dict, kind: str) -> tuple[dict[str, tuple[float, np.ndarray | None]], str]:
    """Each paired arm's extra over base, scaled: (middle, per-repeat values or None), and the unit."""
    arms = {arm["name"]: arm for arm in results["arms"]}
    names = {n for s in results["savings"] for n in (s["separate_arm"], s["otter_arm"])}
    if kind == "space":
        extras = {n: extra_space(arms, n) for n in names}
        scale, unit = bytes_scale(max((abs(v) for v in extras.values() if v is not None), default=0))
        return {n: (v / scale, None) for n, v in extras.items() if v is not None}, unit
    per_repeat = {n: extra_time(arms, n) for n in names}
    big = max((abs(v).max() for v in per_repeat.values() if v.size), default=0.0) >= 10
    scale, unit = (1.0, "s") if big else (1e-3, "ms")
    return {n: (median_extra_time(arms, n) / scale, v / scale) for n, v in per_repeat.items() if v.size}, unit


def _bar(ax: Axes, x: float, name: str, middle: float, spread: np.ndarray | None) -> None:
    """One arm's extra: a bar, a min-max whisker over its repeats, the value written on top."""
    ax.bar(x, middle, width=2 * _HALF * 0.9, color=arm_colour(name), edgecolor=EDGE_COLOUR)
    if spread is not None and spread.size > 1:
        low, high = middle - spread.min(), spread.max() - middle
        ax.errorbar(x, middle, yerr=[[low], [high]], color="black", capsize=4, linewidth=1)
    label = ("+" if middle >= 0 else "") + short_number(middle)
    ax.annotate(
        label,
        (x, max(middle, 0)),
        xytext=(0, 3),
        textcoords="offset points",
        ha="center",
        fontsize=8,
        bbox={"facecolor": "white", "edgecolor": "none", "pad": 1},
    )


def _extra_panel(ax: Axes, results: dict, kind: str) -> str:
    """Bars of extra over base per pair, the paper's and planner's level on Otter's slot; returns the unit."""
    arms = {arm["name"]: arm for arm in results["arms"]}
    values, unit = _extra_values(results, kind)
    for i, saving in enumerate(results["savings"]):
        for offset, name in ((-_HALF, saving["separate_arm"]), (_HALF, saving["otter_arm"])):
            if name in values:
                _bar(ax, i + offset, name, *values[name])
                continue
            status = arms[name]["status"].replace("_", " ") if name in arms else "did not run"
            ax.text(
                i + offset,
                0.03,
                f"{name}\n{status}",
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="bottom",
                fontsize=8,
                color=FAILED_COLOUR,
            )
        separate = values.get(saving["separate_arm"])
        if separate is not None:
            # where Otter's bar would end if it saved what the paper (or the planner) says
            _mark(ax, i + _HALF, separate[0] * (1 - PAPER_SAVED_PCT[kind] / 100), PAPER_STYLE)
            predicted = predicted_pct(saving, kind)
            if predicted is not None:
                _mark(ax, i + _HALF, separate[0] * (1 - predicted / 100), PLANNER_STYLE)
    ax.axhline(0, color="#999999", linewidth=0.8)
    return unit


def _saved_panel(ax: Axes, views: list[SavingView], predicted: list[float | None], kind: str) -> None:
    """Saved share per pair with its CI95, the paper's figure and the planner's prediction."""
    for i, (view, planned) in enumerate(zip(views, predicted, strict=True)):
        if view.value is None:
            ax.text(i, 50, "n/a (see the notes in report.md)", ha="center", fontsize=9)
            continue
        yerr = None if view.ci is None else [[view.value - view.ci[0]], [view.ci[1] - view.value]]
        ax.errorbar(i, view.value, yerr=yerr, fmt="o", color="black", capsize=5, markersize=6)
        # the caveat that changes how to read the point: no interval, or a value outside [0, 100]
        caveats = [note.split(":")[0] for note in view.notes if note.startswith(("above", "below"))]
        label = "\n".join([view.text.replace(" (", "\n("), *(f"{c}: see report.md" for c in caveats)])
        ax.annotate(
            label,
            (i, view.value),
            xytext=(8, 0) if i < len(views) - 1 or len(views) == 1 else (-8, 0),
            textcoords="offset points",
            ha="left" if i < len(views) - 1 or len(views) == 1 else "right",
            va="center",
            fontsize=8,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
        )
        if planned is not None:
            _mark(ax, i, planned, PLANNER_STYLE)
    ax.axhline(PAPER_SAVED_PCT[kind], **PAPER_STYLE)
    ax.axhspan(0, 100, color="#f0f0f0", zorder=0)
    points = [v for view in views for v in (view.value, *(view.ci or ())) if v is not None]
    low, high = min([-5.0, *points]), max([110.0, *points])
    ax.set_ylim(low - 0.12 * (high - low), high + 0.06 * (high - low))  # room for the labels


def _legend(fig: Figure, results: dict, has_prediction: bool) -> None:
    n = min((arm["latency"]["total_s"]["n"] for arm in results["arms"] if _ok(arm)), default=0)
    handles = [
        Line2D(
            [],
            [],
            **PAPER_STYLE,
            label=f"paper: saves {PAPER_SAVED_PCT['space']}% extra space / {PAPER_SAVED_PCT['time']}% extra time",
        ),
        Line2D(
            [],
            [],
            **PLANNER_STYLE,
            label="planner's prediction"
            if has_prediction
            else "planner's prediction: not recorded in results.json",
        ),
        Line2D(
            [],
            [],
            color="black",
            marker="|",
            linestyle="none",
            markersize=10,
            label=f"time bars: difference of medians, whiskers min-max of per-repeat extra (n={n}); saved: CI95",
        ),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8, frameon=False)


def plot_savings(results: dict) -> Figure:
    """Extra over base of each separate arm beside its Otter arm, and the share saved, against the paper."""
    fig = Figure(figsize=(12, 8), layout="constrained")
    (ax_space, ax_time), (saved_space, saved_time) = fig.subplots(2, 2)
    fig.suptitle(f"Otter's saving of the separate model's extra cost ({run_caption(results)})")
    savings = results["savings"]
    if not savings:
        for ax in fig.axes:
            ax.text(
                0.5,
                0.5,
                "no separate/Otter pair in this run: no saving to show",
                ha="center",
                transform=ax.transAxes,
            )
    pairs = [f"{s['separate_arm']}\nvs {s['otter_arm']}" for s in savings]
    for ax, kind, title in (
        (ax_space, "space", "Extra peak memory over base"),
        (ax_time, "time", "Extra total time over base (one workload repeat)"),
    ):
        unit = _extra_panel(ax, results, kind) if savings else ""
        ax.set_title(f"{title}\nleft bar: separate arm, right bar: its Otter arm", fontsize=10)
        ax.set_ylabel(f"extra over base ({unit})" if unit else "extra over base")
    for ax, kind, views in (
        (saved_space, "space", [space_saving(results, s) for s in savings]),
        (saved_time, "time", [time_saving(results, s) for s in savings]),
    ):
        if savings:
            _saved_panel(ax, views, [predicted_pct(s, kind) for s in savings], kind)
        ax.set_title(
            f"Extra {kind} saved by Otter"
            + (" (one reading per arm: no interval)" if kind == "space" else " (CI95)"),
            fontsize=10,
        )
        ax.set_ylabel("saved (% of the separate arm's extra)")
    for ax in fig.axes:
        ax.set_xticks(range(len(pairs)), pairs, fontsize=8)
        ax.set_xlim(-0.6, max(len(pairs), 1) - 0.4)
        ax.set_xlabel("separate arm vs its Otter arm")
        ax.yaxis.set_major_formatter(PLAIN_TICKS)
    _legend(fig, results, any(predicted_pct(s, k) is not None for s in savings for k in PAPER_SAVED_PCT))
    return fig
