"""A sweep's grid: the --vary values parsed and expanded, without torch (a bad --vary answers at once)."""

from __future__ import annotations

import itertools
from typing import Any

from otterbench.arms.registry import knobs

# RunOptions field -> type of its values
VARY_FIELDS: dict[str, type] = {
    "batch_size": int,
    "max_new_tokens": int,
    **{name: knob.kind for name, knob in knobs().items()},
    "num_prompts": int,
    "repeats": int,
    "warmup": int,
    "otter_ratio": float,
}
_TYPE_WORDS = {int: "an integer", float: "a number"}


class SweepInputError(ValueError):
    """A bad --vary value or sweep option; one line naming it and the fix (exit code 2)."""


def parse_vary(items: list[str]) -> dict[str, list[Any]]:
    """['batch_size=1,4,16', 'k=5,10'] -> {'batch_size': [1, 4, 16], 'k': [5, 10]}; one-line errors."""
    known = ", ".join(VARY_FIELDS)
    if not items:
        raise SweepInputError(
            f"--vary is missing: give at least one, e.g. --vary batch_size=1,4,16 ({known})"
        )
    grid: dict[str, list[Any]] = {}
    for item in items:
        name, sep, text = (part.strip() for part in item.partition("="))
        if not sep or name not in VARY_FIELDS:
            raise SweepInputError(f"--vary {item!r}: write FIELD=V1,V2,... with FIELD one of {known}")
        if name in grid:
            raise SweepInputError(f"--vary {name} is given twice: list all its values in one --vary")
        kind = VARY_FIELDS[name]
        values = []
        for raw in (value.strip() for value in text.split(",")):
            try:
                values.append(kind(raw))
            except ValueError:
                raise SweepInputError(
                    f"--vary {item!r}: {raw!r} is not {_TYPE_WORDS[kind]}; write e.g. {name}=1,4,16"
                ) from None
        if len(set(values)) != len(values):
            raise SweepInputError(f"--vary {item!r} repeats a value: list each value once")
        grid[name] = values
    return grid


def expand_grid(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The cartesian product of the grid, first field slowest: one dict of values per point."""
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]
