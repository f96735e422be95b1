"""How a measured saving is shown to a reader: the value, its interval, or why there is none.

One home for the rules the terminal summary, report.md and the figures share:
- an interval needs at least MIN_REPEATS_FOR_INTERVAL repeats per arm (a bootstrap over one or two samples
  collapses to a point or to the samples themselves, which reads as certainty it does not have);
- a saving outside [0, 100] is explained from its own interval (`range_notes`): "within measurement noise"
  only when the interval reaches the boundary; above 100% with an interval that excludes 100, Otter
  measured faster than base, said plainly with what it means; decode-only (TPOT) savings follow the same rules;
- an interval wider than +/-INTERVAL_TARGET_PTS says why (the spread between repeats) and what narrows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from otterbench.results.reference import reference_name

# BCa over fewer repeats gives intervals that can exclude their own estimate: none is shown below this
MIN_REPEATS_FOR_INTERVAL = 5
INTERVAL_TARGET_PTS = 10.0  # half-width, percentage points
PAPER_SAVED_PCT = {"space": 86.5, "time": 98.5}  # [paper] "up to 86.5% extra space and 98.5% extra time"
NO_INTERVAL = "not enough repeats for an interval"
NO_BOUND = "no interval"  # enough repeats, but the bootstrap could not bound the saving


@dataclass(frozen=True)
class SavingView:
    """One saving as shown: value (percent), interval or None, the repeats behind it, text and caveats."""

    kind: str  # "space", "time" (total time) or "decode" (TPOT p50)
    value: float | None
    ci: tuple[float, float] | None  # withheld when too few repeats
    repeats: int | None  # fewest measured repeats among base, separate and Otter (time only)
    text: str  # "77.2% [33.0, 82.7]", "84.0% (not enough repeats for an interval)", "n/a"
    notes: tuple[str, ...]  # plain sentences: why no interval, why outside [0, 100], why so wide


def _arms(results: dict) -> dict[str, dict]:
    return {arm["name"]: arm for arm in results["arms"]}


def _totals(arm: dict | None) -> list[float]:
    if arm is None or arm["status"] != "ok" or not arm.get("latency"):
        return []
    return list(arm["latency"]["total_s"]["samples"])


def _spread_pct(samples: list[float]) -> float:
    """Relative standard deviation between repeats, percent of the median."""
    return 100 * float(np.std(samples, ddof=1) / np.median(samples)) if len(samples) > 1 else 0.0


def pct_text(value: float | None, ci: tuple[float, float] | list[float] | None = None) -> str:
    """`84.0%` or `84.0% [80.1, 88.2]`; `-` for no value."""
    if value is None:
        return "-"
    return f"{value:.1f}%" + (f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "")


def shown_interval(value: float, stored: Any, repeats: int) -> tuple[float, float] | None:
    """The stored interval when it may be shown: enough repeats, and it contains its own estimate."""
    if not stored or repeats < MIN_REPEATS_FOR_INTERVAL or not stored[0] <= value <= stored[1]:
        return None
    return (stored[0], stored[1])


def range_notes(value: float, ci: tuple[float, float] | None, what: str) -> list[str]:
    """Why a saving lies outside [0, 100], read from its own interval (`what`: "total time", "TPOT").

    "Within measurement noise" only when the interval reaches the boundary it crossed; above 100% with an
    interval that excludes 100, Otter measured faster than base, which it cannot be by design (it runs
    base's whole model plus its inserted parameters), so the note says so and what it points at.
    """
    if 0 <= value <= 100:
        return []
    if value > 100:
        head = f"above 100%: Otter's {what} measured below base's, a negative extra"
        if ci is None:
            return [f"{head}; no interval to tell it from noise"]
        if ci[0] <= 100:
            return [
                f"{head}, within measurement noise (its CI95 reaches 100%: Otter's extra cannot be told from 0)"
            ]
        return [
            f"{head}, and its CI95 [{ci[0]:.1f}, {ci[1]:.1f}] excludes 100%: Otter measured faster than base. "
            f"It runs base's whole model plus its inserted parameters, so it cannot be faster by design: the "
            "arms' measurements differ (process placement, kernels, cache state, or the machine's speed "
            "moving between arms). Read it as Otter's extra being at most noise-sized here, not as a gain "
            "beyond base; re-measure on a quiet, dedicated machine before quoting it"
        ]
    head = "below 0%: Otter's extra exceeded the separate arm's"
    if ci is None:
        return [f"{head}; no interval to tell it from noise"]
    if ci[1] >= 0:
        return [f"{head}, within measurement noise (its CI95 reaches 0%)"]
    return [f"{head}, and its CI95 [{ci[0]:.1f}, {ci[1]:.1f}] excludes 0%: Otter cost more {what} than it"]


def _time_notes(
    value: float, ci: tuple[float, float] | None, n: int, totals: dict[str, list[float]]
) -> list[str]:
    notes = []
    if n < MIN_REPEATS_FOR_INTERVAL:
        notes.append(f"{NO_INTERVAL} (n={n} repeats; run with --repeats {MIN_REPEATS_FOR_INTERVAL} or more)")
    notes += range_notes(value, ci, "total time")
    noisiest = max(totals, key=lambda name: _spread_pct(totals[name]))
    spread = (
        f"{noisiest}'s total time has a spread (stdev) of {_spread_pct(totals[noisiest]):.0f}% of its median "
        f"over the n={n} repeats here; more --repeats or a quieter machine narrow it"
    )
    if ci and (ci[1] - ci[0]) / 2 > INTERVAL_TARGET_PTS:
        notes.append(f"interval wider than +/-{INTERVAL_TARGET_PTS:.0f} points: {spread}")
    elif ci is None and n >= MIN_REPEATS_FOR_INTERVAL:
        notes.append(
            f"{NO_BOUND}: the bootstrap could not bound the saving over these repeats (resamples where the separate arm is no slower than base, or an interval that excludes its own estimate); {spread}"
        )
    return notes


def time_saving(results: dict, saving: dict) -> SavingView:
    """The extra-time saving of one savings record, with its interval only when the repeats support one."""
    arms = _arms(results)
    names = (reference_name(arms), saving["separate_arm"], saving["otter_arm"])
    totals = {name: _totals(arms.get(name)) for name in names}
    n = min(len(samples) for samples in totals.values())
    value = saving["extra_time_saved_pct"]
    if value is None:
        return SavingView("time", None, None, n, "n/a", tuple(saving.get("notes") or ()))
    ci = shown_interval(value, saving.get("extra_time_saved_ci95"), n)
    text = pct_text(value, ci) + ("" if n >= MIN_REPEATS_FOR_INTERVAL else f" ({NO_INTERVAL})")
    notes = _time_notes(value, ci, n, totals)
    slower = slower_than_base_note(results, saving)
    return SavingView("time", value, ci, n, text, tuple(notes + ([slower] if slower else [])))


def decode_saving(results: dict, saving: dict) -> SavingView:
    """The decode-only (TPOT p50) saving of one savings record, under the same interval rules as total time."""
    value = saving.get("extra_decode_time_saved_pct")
    arms = _arms(results)
    names = (reference_name(arms), saving["separate_arm"], saving["otter_arm"])
    n = min(len(_totals(arms.get(name))) for name in names)
    if value is None:
        return SavingView("decode", None, None, n, "n/a", ())
    stored = saving.get("extra_decode_time_saved_ci95")
    ci = shown_interval(value, stored, n)
    text = pct_text(value, ci) + ("" if n >= MIN_REPEATS_FOR_INTERVAL else f" ({NO_INTERVAL})")
    notes = range_notes(value, ci, "TPOT")
    if stored and ci is None and n >= MIN_REPEATS_FOR_INTERVAL:  # a file whose point was another statistic
        notes.append(
            f"its CI95 [{stored[0]:.1f}, {stored[1]:.1f}] excludes the estimate {value:.1f}% (written when the "
            "point was TPOT p50 over all steps, the interval over per-repeat medians): not shown"
        )
    return SavingView("decode", value, ci, n, text, tuple(notes))


def _peak_extras(results: dict, saving: dict) -> tuple[float, float, str]:
    """(separate's extra, Otter's extra) peak over base in MiB, and the memory method that read them."""
    arms = _arms(results)
    reference = reference_name(arms)
    memory = {name: arms[name]["memory"] for name in (reference, saving["separate_arm"], saving["otter_arm"])}
    base, separate, otter = (m["peak_bytes"] / 2**20 for m in memory.values())
    return separate - base, otter - base, memory[reference].get("method", "-")


def space_saving(results: dict, saving: dict) -> SavingView:
    """The extra-space saving of one savings record (one peak reading per arm: never an interval)."""
    value = saving["extra_space_saved_pct"]
    if value is None:
        space_notes = [note for note in saving.get("notes") or () if note.startswith("extra space")]
        return SavingView("space", None, None, None, "n/a", tuple(space_notes))
    notes = []
    if not 0 <= value <= 100:
        separate, otter, method = _peak_extras(results, saving)
        what = (
            "Otter's peak read below base's" if value > 100 else "Otter's extra exceeded the separate arm's"
        )
        notes.append(
            f"{'above 100%' if value > 100 else 'below 0%'}: {what} (extra over base: separate "
            f"{separate:+.1f} MiB, Otter {otter:+.1f} MiB, by {method}); peak memory is one reading per "
            "arm with allocator and runtime slack in it, so a difference of a few MiB may be reading noise"
        )
    return SavingView("space", value, None, None, pct_text(value), tuple(notes))


def predicted_pct(saving: dict, kind: str) -> float | None:
    """The planner's predicted saving recorded beside the measured one (`saving["predicted"]`), if any."""
    predicted = saving.get("predicted") or {}
    # the planner's space figure, and its bytes-moved time figure (decode is memory-bound: docs/planner.md)
    return predicted.get({"space": "space_pct", "time": "time_bytes_pct"}[kind])


def speedup_lines(results: dict) -> list[str]:
    """The lead of a speculative (accel) run: each speculative arm's speedup over base, said plainly.

    Speculation exists to be faster than base, so the headline is the speedup (median total time of base
    over the arm's, BCa CI95 over repeats), and an arm slower than base is called slower, whatever share
    of a separate arm's extra time Otter saves.
    """
    lines = []
    for arm in results["arms"]:
        spec = arm.get("speculation") or {}
        speedup, ci = spec.get("speedup"), spec.get("speedup_ci95")
        if arm["status"] != "ok" or speedup is None:
            continue
        interval = f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""
        if ci and ci[0] <= 1.0 <= ci[1]:
            verdict = "within measurement noise of base's speed (its CI95 reaches 1x)"
        elif speedup < 1.0:
            verdict = f"SLOWER than base: it takes {1 / speedup:.2f}x base's time"
        else:
            verdict = "faster than base"
        lines.append(f"{arm['name']}: speedup {speedup:.2f}x{interval} over base, {verdict}")
    return lines


def slower_than_base_note(results: dict, saving: dict) -> str | None:
    """For an accel pair whose Otter arm is slower than base: its 'extra time saved' is of a slowdown."""
    spec = (_arms(results).get(saving["otter_arm"]) or {}).get("speculation") or {}
    speedup = spec.get("speedup")
    if speedup is None or speedup >= 1.0:
        return None
    return (
        f"{saving['otter_arm']} is slower than base ({speedup:.2f}x): the extra time saved is a share of a "
        "slowdown, not a speedup; lead with the speedup"
    )
