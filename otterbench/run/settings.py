"""The grouped settings of a run, carried whole from options to config to each arm's job (no copied fields).

- `OtterSettings`: which Otter a run measures (a saved insertion, or a fresh one of a ratio) and its layout.
- `BackendSettings` (otterbench/backends/spec.py): the decode backend and its own options.
- `ProcessSettings`: how arms run: their isolation, schedule, torch threads and device map.
Each field's metadata names the command-line option that sets it and its help; `run/options.py` routes
those option names into the groups, and the results' `config` block writes them back under the same names.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, NamedTuple, get_type_hints

from otterbench.backends import BACKENDS, BackendSettings
from otterbench.otter.spec import DEFAULT_RATIO

ISOLATIONS = ("process", "inline")
SCHEDULES = ("auto", "interleaved", "sequential")
# the engine the yardstick sets the base against, beside eager (run/yardstick.py): the compiled engine, or
# the cheap stand-in, its static-cache path uncompiled; a run without --yardstick-engine takes the default
# (read when the config is resolved: the tests' conftest sets the stand-in, one slow test the real one)
YARDSTICK_ENGINES = ("compiled", "static")
DEFAULT_YARDSTICK_ENGINE = "compiled"
# torch.compile's on-disk caches (inductor's FX graph cache, AOTAutograd's) for the run's arm processes:
# one folder for the run (a graph another arm compiled is a hit), or a fresh one per arm (every arm cold); any
# other value with a "/" in it is a folder kept across runs (run/compile_cache.py)
COMPILE_CACHES = ("run", "arm")


def _option(name: str, default: Any, help: str) -> Any:
    return field(default=default, metadata={"option": name, "help": help})


@dataclass(frozen=True)
class OtterSettings:
    """Which Otter is measured, how it is laid out, and what its deviation is judged beside."""

    path: str | None = _option(
        "otter", None, "saved insertion (from `otterbench distill`); default: undistilled"
    )
    ratio: float = _option(
        "otter_ratio", DEFAULT_RATIO, "insertion size when no --otter is given (dx=d*r, ...)"
    )
    layout: str | None = _option(  # None until the run config is resolved: then the engine's first layout
        "layout",
        None,
        "Otter layout: packed (engine-ready, zero-free), split (wrappers) or fused (widened checkpoint with "
        "zero blocks); default: the engine's preferred (packed under eager and compiled); fused and packed "
        "checkpoints are built once per run",
    )
    yardstick_engine: str | None = _option(  # None until the run config is resolved
        "yardstick_engine",
        None,
        "the engine the non-disruption yardstick sets the base against, beside eager: compiled (the other "
        "engine; the default, where torch.compile runs) or static (its static KV cache uncompiled: cheap)",
    )
    fused_path: str | None = (
        None  # set by resolve once the fused checkpoint is built (run/fused_checkpoint.py)
    )


@dataclass(frozen=True)
class ProcessSettings:
    """How the arms run: each in its own process or inline, in which order, with how many threads."""

    isolation: str = _option(
        "isolation", "process", "process (one fresh process per arm) or inline (debugging)"
    )
    schedule: str = _option(
        "schedule",
        "auto",
        "interleaved (arms in live processes, measured round-robin: drift hits all alike), sequential "
        "(one arm after another), or auto (interleaved on CPU, sequential on GPU)",
    )
    cpu_threads: int = _option(
        "cpu_threads",
        1,
        "torch threads per arm process on CPU (1: steady timings on shared cores; 0: torch's default)",
    )
    device_map: str | None = _option(
        "device_map", None, 'e.g. "auto": let accelerate place a model too big for one GPU'
    )
    compile_cache: str = _option(
        "compile_cache",
        "run",
        "torch.compile's on-disk caches (inductor FX graphs, AOTAutograd) for the arm processes: run (one "
        "folder shared by the run's arms: a graph another arm compiled is a cache hit), arm (one each), or a "
        "folder path with a / (e.g. ./compile-cache): shared by the arms and kept for later runs",
    )


def _engine_help() -> str:
    return "decode backend: " + "; ".join(f"{spec.name} ({spec.help})" for spec in BACKENDS.values())


GROUPS: dict[str, type] = {"insertion": OtterSettings, "backend": BackendSettings, "process": ProcessSettings}


class GroupOption(NamedTuple):
    """A command-line option that sets one field of a settings group."""

    group: str  # RunOptions / RunConfig / ArmJob field holding the settings
    field: str
    default: Any
    help: str
    annotation: Any


def group_options() -> dict[str, GroupOption]:
    """option name -> where it goes, for every setting a command-line option sets."""
    found = {}
    for group, settings in GROUPS.items():
        hints = get_type_hints(settings)
        for f in fields(settings):
            if "option" in f.metadata:
                help = f.metadata["help"]
                found[f.metadata["option"]] = GroupOption(group, f.name, f.default, help, hints[f.name])
    found["engine"] = GroupOption("backend", "name", BackendSettings().name, _engine_help(), str)
    return found


def flatten(groups: dict[str, Any]) -> dict[str, Any]:
    """option name -> value of the grouped settings (what a sweep records)."""
    return {option: getattr(groups[where.group], where.field) for option, where in group_options().items()}


def route(values: dict[str, Any], groups: dict[str, Any] | None = None) -> dict[str, Any]:
    """Move every grouped option of `values` (option name -> value, popped) into its settings group.

    `groups` (group -> settings) are the starting settings; missing groups start from their defaults.
    """
    found = {name: (groups or {}).get(name) or settings() for name, settings in GROUPS.items()}
    for option, where in group_options().items():
        if option in values:
            value = values.pop(option)
            value = str(value) if isinstance(value, Path) else value
            found[where.group] = replace(found[where.group], **{where.field: value})
    return found
