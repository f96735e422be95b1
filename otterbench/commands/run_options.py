"""The run knobs as Typer options, generated from `otterbench.run.options.RunOptions` (declared there once)
and from the registries it reads (every model role's source, every arm's task knob).

`@with_run_options` appends every RunOptions field to a command's own parameters and hands the command one
`options: RunOptions`; `otterbench run` and `otterbench sweep` use it, so they accept the same knobs.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from typing import Any, Optional

import typer

from otterbench.run.options import FIELD_NAMES, RunOptions, registered_knobs
from otterbench.run.settings import group_options


def _parameter(name: str, default: Any, help: str, annotation: Any) -> inspect.Parameter:
    option = typer.Option(default, help=help)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)


def _knob_parameters(registered: dict[str, tuple[type, str]]) -> list[inspect.Parameter]:
    hints = typing.get_type_hints(RunOptions)
    own = [
        _parameter(f.name, f.default, f.metadata["help"], hints[f.name])
        for f in dataclasses.fields(RunOptions)
        if f.name in FIELD_NAMES
    ]
    grouped = [
        _parameter(option, where.default, where.help, where.annotation)
        for option, where in group_options().items()
    ]
    # Typer reads the annotations at runtime: Optional, not `X | None`
    registries = [
        _parameter(name, None, help, Optional[kind])  # noqa: UP045
        for name, (kind, help) in registered.items()
    ]
    return own + grouped + registries


def with_run_options(command: Callable[..., None]) -> Callable[..., None]:
    """A Typer command taking the command's own options plus every run knob; calls `command(options=...)`."""
    registered = registered_knobs()  # the options the registries hold now, when the command is declared
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "options"]
    parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + _knob_parameters(registered)
    flat = (*FIELD_NAMES, *group_options(), *registered)

    def wrapper(**values: Any) -> None:
        options = {name: values.pop(name) for name in flat}
        command(options=RunOptions(**options), **values)

    wrapper.__name__, wrapper.__doc__ = command.__name__, command.__doc__
    wrapper.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper
