"""The one home of the saving every figure reports (docs/otter.md): the share of a separate arm's extra cost
over the base that the Otter arm saves, `saved_pct = 100 * (1 - extra(otter) / extra(separate))` with
`extra(arm) = X(arm) - X(base)`, for any cost X (bytes, FLOPs, seconds). Measured (results/) and predicted
(plan/) savings both call it.
"""

from __future__ import annotations


def saved_pct(base: float, separate: float, otter: float) -> float | None:
    """Percent of the separate arm's extra cost over base that the Otter arm saves; None when the separate arm
    adds nothing (or its extra is not a number)."""
    extra_separate = separate - base
    if not extra_separate > 0:
        return None
    return float(100.0 * (1.0 - (otter - base) / extra_separate))
