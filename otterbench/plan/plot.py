"""Plot predicted savings against the insertion ratio, from plan results (data in, PNG out)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from otterbench.plan.costs import PlanResult  # noqa: E402

PAPER_SPACE_PCT = 86.5  # [paper] "saving up to 86.5% extra space"
PAPER_TIME_PCT = 98.5  # [paper] "... and 98.5% extra time"
DEFAULT_RATIOS = (1 / 32, 1 / 24, 1 / 16, 1 / 12, 1 / 8, 1 / 6, 1 / 4, 1 / 3, 1 / 2)
_PANELS = (  # (title, paper reference, [(metric, label, marker)])
    ("extra space saved (weights + KV cache)", PAPER_SPACE_PCT, [("space_pct", "space", "o")]),
    (
        "extra decode time saved",
        PAPER_TIME_PCT,
        [("time_flops_pct", "compute-bound (FLOPs)", "s"), ("time_bytes_pct", "memory-bound (bytes)", "^")],
    ),
)
_COLORS = ("tab:blue", "tab:red", "tab:green")


def plot_savings(results: list[PlanResult], path: Path) -> Path:
    """Draw each separate arm's predicted space and time savings against the ratio; write a PNG to `path`."""
    ratios = [result.inputs.ratio for result in results]
    separate_arms = [saving.separate_arm for saving in results[0].savings]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), dpi=120, sharey=True)
    for ax, (title, paper_pct, metrics) in zip(axes, _PANELS, strict=True):
        for color, arm in zip(_COLORS, separate_arms, strict=False):
            for metric, label, marker in metrics:
                values = [_pct(result, arm, metric) for result in results]
                style = "-" if marker != "^" else "--"
                ax.plot(ratios, values, style, color=color, marker=marker, ms=4, label=f"vs {arm}, {label}")
        ax.axhline(paper_pct, color="black", lw=0.8, ls=":", label=f"paper: {paper_pct}%")
        ax.set_xscale("log", base=2)
        ax.set_xticks(ratios, [str(Fraction(r).limit_denominator(64)) for r in ratios])
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
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _pct(result: PlanResult, separate_arm: str, metric: str) -> float:
    value = next(getattr(s, metric) for s in result.savings if s.separate_arm == separate_arm)
    return float("nan") if value is None else value
