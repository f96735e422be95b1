"""The terminal table of a run's speculative arms (task accel): acceptance, forwards, speed, extra memory."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _speedup(spec: dict[str, Any]) -> str:
    if spec["speedup"] is None:
        return "n/a"
    ci = spec["speedup_ci95"]
    return f"{spec['speedup']:.2f}x" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def speculation_table(results: dict[str, Any]) -> Table | None:
    """One row per finished speculative arm, or None when the run has none."""
    arms = [arm for arm in results["arms"] if arm.get("speculation") and arm["status"] == "ok"]
    if not arms:
        return None
    table = Table(title="Speculative decoding (output = base's greedy tokens; speedup CI95 over repeats)")
    columns = ("arm", "acceptance", "by draft position", "accepted/forward", "forwards/token")
    for column in (*columns, "ms/token", "speedup vs base", "extra peak"):
        table.add_column(column, no_wrap=True, justify="left" if column == "arm" else "right")
    for arm in arms:
        spec = arm["speculation"]
        extra = spec["extra_peak_bytes"]
        table.add_row(
            arm["name"],
            _pct(spec["acceptance"]),
            " ".join(_pct(rate) for rate in spec["acceptance_by_position"]),
            "n/a" if spec["accepted_per_forward"] is None else f"{spec['accepted_per_forward']:.2f}",
            f"{spec['forwards_per_token']:.2f} + {spec['draft_forwards_per_token']:.2f} draft",
            "n/a" if spec["time_per_token_s"] is None else f"{spec['time_per_token_s'] * 1e3:.2f}",
            _speedup(spec),
            "n/a" if extra is None else f"{extra / (1 << 20):+.1f} MiB",
        )
    return table
