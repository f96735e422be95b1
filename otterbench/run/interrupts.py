"""Ctrl-C and SIGTERM during a run: the parent decides, arm processes never see them.

While a run is active, SIGINT and SIGTERM raise `Interrupted` in the parent (exit 130 or 143), so the schedule
can keep the repeats that finished. Arm processes are started with both signals ignored from their first
instruction: a terminal's Ctrl-C goes to the whole process group, and a worker still importing torch would
otherwise die with a traceback and take its pipe down with it.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from otterbench.exits import Exit

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The run was stopped by Ctrl-C (SIGINT) or SIGTERM; what finished is kept."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> Exit:
        return Exit.TERMINATED if self.signum == signal.SIGTERM else Exit.INTERRUPTED


class InterruptGuard:
    """Turns SIGINT/SIGTERM into `Interrupted`; `deferred()` holds one back until a critical step is done."""

    def __init__(self) -> None:
        self.first: int | None = None  # the first signal received decides the exit code
        self._deferring = 0
        self._pending: int | None = None

    def raise_if_stopped(self) -> None:
        """Raise the stop a signal asked for, if one arrived: Python drops an exception raised while a
        `__del__` or a weakref callback runs, so the handler's own raise can be lost. Call it where raising is
        safe (the schedule's own steps) and only before the stop was handled."""
        if self.first is not None and not self._deferring:
            raise Interrupted(self.first)

    def _handle(self, signum: int, frame: object) -> None:
        self.first = self.first or signum
        if self._deferring:
            self._pending = self._pending or signum
            return
        raise Interrupted(signum)

    @contextmanager
    def deferred(self, reraise: bool = True) -> Iterator[None]:
        """A signal arriving inside is raised after the block (or only recorded, with reraise=False)."""
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
        pending, self._pending = self._pending, None
        if pending is not None and reraise and not self._deferring:
            raise Interrupted(pending)

    @contextmanager
    def installed(self) -> Iterator[InterruptGuard]:
        """Handle SIGINT and SIGTERM for the block (main thread only; elsewhere Python's defaults stay)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {signum: signal.signal(signum, self._handle) for signum in HANDLED}
        unraisable, sys.unraisablehook = sys.unraisablehook, _quiet_dropped_stops(sys.unraisablehook)
        try:
            yield self
        finally:
            sys.unraisablehook = unraisable
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def _quiet_dropped_stops(forward: Callable[[Any], object]) -> Callable[[Any], object]:
    """An unraisable-exception hook that says nothing of a dropped `Interrupted` (`raise_if_stopped` raises it
    again where it can propagate) and hands every other one to `forward`."""

    def hook(unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, Interrupted):
            forward(unraisable)

    return hook


@contextmanager
def children_ignore_interrupts() -> Iterator[None]:
    """Start processes inside this block: they inherit SIGINT/SIGTERM ignored (the parent's own are held back)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # blocked signals stay pending even while ignored (Linux), so the parent's Ctrl-C is not lost here
    signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in HANDLED}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED)


def ignore_interrupts() -> None:
    """In an arm process: ignore SIGINT/SIGTERM (the parent stops it) and unblock what the parent held back."""
    for signum in HANDLED:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED)
