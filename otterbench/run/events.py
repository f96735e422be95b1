"""What a run tells its caller as it goes: typed events handed to an optional sink (the CLI draws progress).

The library never calls back into a command; a caller that wants progress passes `on_event` and reads these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otterbench.run.record import ArmRecord


@dataclass(frozen=True)
class RunStarted:
    """The run is resolved and the run folder exists; nothing is measured yet."""

    run_dir: Path
    resolved: Any  # otterbench.run.resolve.ResolvedRun


@dataclass(frozen=True)
class ArmStarted:
    """An arm's process is starting (`pid` None when measured inline)."""

    arm: str
    total_steps: int  # warm-up plus measured repeats
    pid: int | None = None


@dataclass(frozen=True)
class ArmPhase:
    """An arm's process entered a phase its bar does not count: "loading models", "compiling", "prefill"..."""

    arm: str
    phase: str


@dataclass(frozen=True)
class RunPhase:
    """The parent is preparing the run before any arm starts: "preparing the fused checkpoint"..."""

    phase: str


@dataclass(frozen=True)
class ArmProgress:
    """An arm finished step `done` of `total` (warm-up and measured repeats)."""

    arm: str
    done: int
    total: int


@dataclass(frozen=True)
class ArmFinished:
    """An arm has its final record (ok, failed, or not_run when interrupted before a measured repeat)."""

    record: ArmRecord


@dataclass(frozen=True)
class Notice:
    """Something the user should know that does not stop the run (other GPU processes, a failed write)."""

    message: str


@dataclass(frozen=True)
class PointStarted:
    """A sweep starts point `index` (0-based) of `total`; the point's run events follow."""

    sweep_dir: Path
    index: int
    total: int
    label: str  # `batch_size=4 k=10`


RunEvent = RunPhase | RunStarted | ArmStarted | ArmPhase | ArmProgress | ArmFinished | Notice | PointStarted
EventSink = Callable[[RunEvent], None]


def ignore(event: RunEvent) -> None:
    """The sink used when the caller passes none."""
