"""plan --plot: the default ratio is marked and two arms with equal predictions both stay visible."""

from __future__ import annotations

from matplotlib.figure import Figure

from otterbench.plan.costs import sweep_ratios
from otterbench.plan.inputs import PlanInputs
from otterbench.plan.plot import DEFAULT_RATIO, savings_figure


def test_plan_figure_marks_default_ratio_and_equal_series() -> None:
    results = sweep_ratios(PlanInputs(base="llama-3-8b"), [1 / 16, 1 / 8, 1 / 4])
    fig = savings_figure(results, chosen_ratio=1 / 4)
    assert isinstance(fig, Figure)
    space, time = fig.axes
    for ax in (space, time):
        labels = ax.get_legend_handles_labels()[1]
        assert "default ratio 1/8" in labels and "this plan's ratio 1/4" in labels
        verticals = {line.get_xdata()[0] for line in ax.get_lines() if len(set(line.get_xdata())) == 1}
        assert DEFAULT_RATIO in verticals
    # both ARGS arms use a reward model of the base's shape: their compute-bound time series coincide
    labels = time.get_legend_handles_labels()[1]
    assert "vs args-optimized, compute-bound (FLOPs) (same as vs args-faithful)" in labels
    widths = {line.get_label(): line.get_linewidth() for line in time.get_lines()}
    assert (
        widths["vs args-faithful, compute-bound (FLOPs)"]
        > widths["vs args-optimized, compute-bound (FLOPs) (same as vs args-faithful)"]
    )
    assert [t.get_text() for t in space.get_xticklabels()] == ["1/16", "1/8", "1/4"]
