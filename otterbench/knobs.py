"""Knob: one named setting with a default, a help text and its bounds (an arm's task knob, a backend's option).

A base module: the arms' task rules and the decode backends declare knobs; suites, run options and the
workload read them through their registries.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Knob:
    """One task knob (ARGS k, DExperts alpha, ...): a suite field, a run option and a workload value.

    Bounds are checked where a value enters (suite file, command line); `at_most_vocab` also bounds it by the
    vocabulary once the tokenizer is known (k candidates out of V tokens).
    """

    name: str
    kind: type  # int or float
    default: Any
    help: str
    minimum: float | None = None
    open_minimum: bool = False  # the minimum itself is refused (0 < filter_p)
    maximum: float | None = None
    at_most_vocab: bool = False
    range_hint: str = ""  # how to say the valid range in an error, when the bounds alone do not

    def problem(self, value: Any) -> str | None:
        """What is wrong with `value` as a fix to append after `name = value`, or None when it is fine."""
        if self.kind is float and not math.isfinite(value):
            return (
                f"is not a finite number: pass a finite --{self.name.replace('_', '-')} "
                f"(or fix `{self.name}` in the suite file)"
            )
        low = self.minimum is not None and (
            value <= self.minimum if self.open_minimum else value < self.minimum
        )
        high = self.maximum is not None and value > self.maximum
        if not (low or high):
            return None
        if self.range_hint:
            return f"is out of range: choose {self.range_hint}"
        return f"is too small: use an integer >= {self.minimum:g}"

    def vocab_problem(self, value: Any, vocab_size: int) -> str | None:
        """The fix when `value` exceeds what a vocabulary of `vocab_size` tokens allows, or None."""
        if self.at_most_vocab and not 1 <= value <= vocab_size:
            return f"is invalid: choose 1 <= {self.name} <= vocab size {vocab_size}"
        return None


def knob_problems(declared: Mapping[str, Knob], values: Mapping[str, Any], vocab_size: int) -> list[str]:
    """Values out of their knob's bounds or beyond a vocabulary of `vocab_size` tokens (k > V), one line each."""
    problems = []
    for name, value in values.items():
        knob = declared.get(name)
        fix = (knob.vocab_problem(value, vocab_size) or knob.problem(value)) if knob else None
        if fix:
            problems.append(f"workload {name}={value!r} {fix}")
    return problems


def knob_kwargs(cls: type) -> type:
    """Let a frozen dataclass with a `knobs` mapping take its knobs as keyword arguments too.

    `Workload(..., k=5)` and `dataclasses.replace(workload, k=5)` put `k` into `knobs`, so callers name a knob
    the same way whether they build, replace or read it (`workload.k`).
    """
    generated = cls.__init__
    own = {f.name for f in fields(cls)}

    def __init__(self: Any, *args: Any, knobs: Mapping[str, Any] | None = None, **values: Any) -> None:
        named = {name: values.pop(name) for name in list(values) if name not in own}
        generated(self, *args, knobs={**(knobs or {}), **named}, **values)

    __init__.__doc__ = generated.__doc__
    cls.__init__ = __init__  # type: ignore[method-assign]
    return cls


class KnobAttributes:
    """Read the entries of a dataclass's `knobs` mapping as attributes (`workload.k`)."""

    def __getattr__(self, name: str) -> Any:
        knobs = self.__dict__.get("knobs")  # absent while unpickling: no recursion
        if knobs is not None and name in knobs:
            return knobs[name]
        raise AttributeError(f"{type(self).__name__} has no field or knob {name!r}")
