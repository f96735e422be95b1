"""Plot predicted savings against the insertion ratio, from plan results (data in, Figure or PNG out).

Built as a bare `Figure` (Agg via savefig), never through pyplot: no GUI backend, no global figure list.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from otterbench.otter.spec import DEFAULT_RATIO
from otterbench.plan.costs import PlanResult
from otterbench.results.headline import PAPER_SAVED_PCT

DEFAULT_RATIOS = (1 / 32, 1 / 24, 1 / 16, 1 / 12, 1 / 8, 1 / 6, 1 / 4, 1 / 3, 1 / 2)
_PANELS = (  # (title, kind of the paper's figure, [(metric, label, marker)])
    ("extra space saved (weights + KV cache)", "space", [("space_pct", "space", "o")]),
    (
        "extra decode time saved",
        "time",
        [("time_flops_pct", "compute-bound (FLOPs)", "s"), ("time_bytes_pct", "memory-bound (bytes)", "^")],
    ),
)
_COLORS = ("tab:blue", "tab:red", "tab:green")
# the first arm's series is drawn wide and hollow, the later ones thin and filled on top of it, so two arms
# with the same predicted values (e.g. both ARGS arms share a reward model's size) both stay visible
_LAYERS = (
    {"linewidth": 4.0, "alpha": 0.45, "markersize": 9, "markerfacecolor": "none"},
    {"linewidth": 1.2, "alpha": 1.0, "markersize": 4},
    {"linewidth": 1.0, "alpha": 1.0, "markersize": 3},
)


def _ratio_label(ratio: float) -> str:
    return str(Fraction(ratio).limit_denominator(64))


def _draw_series(ax: Axes, results: list[PlanResult], metrics: list, arms: list[str]) -> None:
    ratios = [result.inputs.ratio for result in results]
    drawn: dict[str, np.ndarray] = {}
    for (color, layer), arm in zip(zip(_COLORS, _LAYERS, strict=True), arms, strict=False):
        for metric, label, marker in metrics:
            values = np.array([_pct(result, arm, metric) for result in results])
            name = f"vs {arm}, {label}"
            same = next((k for k, v in drawn.items() if np.allclose(v, values, equal_nan=True)), None)
            style = "-" if marker != "^" else "--"
            shown = name if same is None else f"{name} (same as {same.split(',')[0]})"
            ax.plot(ratios, values, style, color=color, marker=marker, label=shown, **layer)
            drawn[name] = values


def _mark_ratios(ax: Axes, chosen: float | None) -> None:
    label = f"default ratio {_ratio_label(DEFAULT_RATIO)}"
    ax.axvline(DEFAULT_RATIO, color="#555555", lw=1.0, ls="-", zorder=0, label=label)
    if chosen is not None and chosen != DEFAULT_RATIO:
        ax.axvline(
            chosen, color="tab:purple", lw=1.0, ls="--", label=f"this plan's ratio {_ratio_label(chosen)}"
        )


def savings_figure(results: list[PlanResult], chosen_ratio: float | None = None) -> Figure:
    """Each separate arm's predicted space and time savings against the insertion ratio, as a Figure."""
    ratios = [result.inputs.ratio for result in results]
    separate_arms = [saving.separate_arm for saving in results[0].savings]
    fig = Figure(figsize=(11, 4.8), dpi=120, layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (title, kind, metrics) in zip(axes, _PANELS, strict=True):
        _draw_series(ax, results, metrics, separate_arms)
        paper_pct = PAPER_SAVED_PCT[kind]
        ax.axhline(paper_pct, color="black", lw=0.8, ls=":", label=f"paper: {paper_pct}%")
        _mark_ratios(ax, chosen_ratio)
        ax.set_xscale("log", base=2)
        ax.set_xticks(ratios, [_ratio_label(r) for r in ratios])
        ax.minorticks_off()
        ax.set_xlabel("insertion ratio r (dx = d·r, mx = m·r, gx = max(1, g·r))")
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    axes[0].set_ylabel("predicted share of the separate arm's extra cost saved (%)")
    inputs = results[0].inputs
    fig.suptitle(
        f"Otter, predicted from configs: base {inputs.base}, {inputs.task}, k={inputs.k}, "
        f"context={inputs.context} tokens, batch={inputs.batch_size}, {inputs.dtype}",
        fontsize=10,
    )
    return fig


def plot_savings(results: list[PlanResult], path: Path, chosen_ratio: float | None = None) -> Path:
    """Write `savings_figure(results)` as a PNG to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    savings_figure(results, chosen_ratio).savefig(path)
    return path


def _pct(result: PlanResult, separate_arm: str, metric: str) -> float:
    value = next(getattr(s, metric) for s in result.savings if s.separate_arm == separate_arm)
    return float("nan") if value is None else value
