"""The run knobs as Typer options, generated from `otterbench.run.options.RunOptions` (declared there once).

`@with_run_options` appends every RunOptions field to a command's own parameters and hands the command one
`options: RunOptions`; `otterbench run` and `otterbench sweep` use it, so they accept the same knobs.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from typing import Any

import typer

from otterbench.run.options import KNOB_NAMES, RunOptions


def _knob_parameters() -> list[inspect.Parameter]:
    hints = typing.get_type_hints(RunOptions)
    return [
        inspect.Parameter(
            f.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(f.default, help=f.metadata["help"]),
            annotation=hints[f.name],
        )
        for f in dataclasses.fields(RunOptions)
    ]


def with_run_options(command: Callable[..., None]) -> Callable[..., None]:
    """A Typer command taking the command's own options plus every run knob; calls `command(options=...)`."""
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "options"]
    parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + _knob_parameters()

    def wrapper(**values: Any) -> None:
        knobs = {name: values.pop(name) for name in KNOB_NAMES}
        command(options=RunOptions(**knobs), **values)

    wrapper.__name__, wrapper.__doc__ = command.__name__, command.__doc__
    wrapper.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper
