"""predict: the library entry point of `otterbench plan`: costs from configs, and the savings figure if asked."""

from __future__ import annotations

from pathlib import Path

from otterbench.paths import writable_problem
from otterbench.plan.costs import PlanResult, plan_costs, sweep_ratios
from otterbench.plan.inputs import PlanInputs
from otterbench.plan.shapes import PlanError


def predict(inputs: PlanInputs, plot: Path | None = None) -> PlanResult:
    """Every arm's predicted cost and Otter's savings; with `plot`, savings against ratio written as a PNG.

    Bad inputs, an unwritable or unwritten `plot` raise PlanError with one line.
    """
    problem = writable_problem(plot, "--plot", is_file=True) if plot is not None else None
    if problem:
        raise PlanError(problem)
    result = plan_costs(inputs)
    if plot is not None:
        from otterbench.plan.plot import DEFAULT_RATIOS, plot_savings

        try:
            plot_savings(sweep_ratios(inputs, list(DEFAULT_RATIOS)), plot, inputs.ratio)
        except OSError as error:  # read-only or full disk found while writing the plot
            raise PlanError(f"cannot write --plot {plot} ({error.strerror}): pass a writable path") from None
    return result
