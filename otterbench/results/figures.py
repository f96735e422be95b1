"""One figure per latency metric: the statistic every reader shows, in one unit, under one name.

`run`'s summary, `check`, `compare`, `report` (report.md) and `export` all show a metric as the same
statistic of the same samples of results.json, in milliseconds, named as below, e.g. "TPOT p50 ms": the
median of every per-token sample of the arm's measured repeats (the `median` results.json stores). The
gate's test runs on one aggregate per repeat (docs/regression-gate.md), but the values and the change it
shows are these figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

UNIT = "ms"
_SCALE = 1e3  # results.json stores seconds


@dataclass(frozen=True)
class LatencyFigure:
    """Which summary field of which latency metric, and the name every reader gives it."""

    metric: str  # results.json latency key
    statistic: str  # summary field: median (p50) or p90
    name: str  # "TPOT p50": the words every reader prints, followed by the unit

    @property
    def label(self) -> str:
        """The name with its unit, e.g. `TPOT p50 ms`."""
        return f"{self.name} {UNIT}"


FIGURES = {
    "ttft": LatencyFigure("ttft_s", "median", "TTFT p50"),
    "tpot": LatencyFigure("tpot_s", "median", "TPOT p50"),
    "tpot_p90": LatencyFigure("tpot_s", "p90", "TPOT p90"),
    "total": LatencyFigure("total_s", "median", "total p50"),
}


def figure_ms(arm: dict[str, Any] | None, key: str) -> float | None:
    """The arm's figure `key` in milliseconds, or None when the arm has no such samples."""
    figure = FIGURES[key]
    latency = (arm or {}).get("latency") or {}
    summary = latency.get(figure.metric) or {}
    value = summary.get(figure.statistic) if summary.get("n", 0) else None
    return None if value is None else value * _SCALE


def seconds_to_ms(value: float | None) -> float | None:
    """A results.json duration (seconds) in the figures' unit."""
    return None if value is None else value * _SCALE


def ms_text(value: float | None) -> str:
    """`1,234.56`: a figure in ms as every table prints it; `-` when there is none."""
    return "-" if value is None else f"{value:,.2f}"
