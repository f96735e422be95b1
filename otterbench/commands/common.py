"""What every command shares: one unwrapped error line on stderr and the exit code that goes with it, and
printing that survives a reader who stops reading (`otterbench check A --baseline A | head -1`).

A closed pipe must not change a command's exit code: CI reads `check`'s exit code as its verdict, and rich's
own answer to a closed pipe is exit 1 ("regression"). Printing to a closed stdout therefore follows Python's
documented idiom (https://docs.python.org/3/library/signal.html#note-on-sigpipe): point stdout at devnull
and carry on, so the command ends with its own exit code.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console

from otterbench.exits import Exit


def fail(message: str, code: int = Exit.BAD_INPUT) -> typer.Exit:
    """Print `error: line` on stderr for each line of `message`; return the Exit to raise."""
    for line in message.splitlines() or [""]:
        typer.echo(f"error: {line}", err=True)
    return typer.Exit(int(code))


def silence_stdout() -> None:
    """Send the rest of stdout to devnull: its reader is gone, and the interpreter's last flush must not fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


class StdoutConsole(Console):
    """A rich console whose closed pipe ends the printing, not the command (rich would exit 1)."""

    def on_broken_pipe(self) -> None:
        """The reader closed early: print nothing more, keep the command's own exit code."""
        self.quiet = True
        silence_stdout()


def stdout_console(pipe_width: int | None = None) -> Console:
    """The console a command prints its results with; `pipe_width` columns when stdout is not a terminal
    (CI logs and pipes: rows kept on one line instead of rich's 80 columns)."""
    if pipe_width is None or sys.stdout.isatty():
        return StdoutConsole()
    return StdoutConsole(width=pipe_width)


@contextmanager
def stdout_may_close() -> Iterator[None]:
    """Plain `print`/`typer.echo` inside it: a reader that closed early silences the rest of stdout."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()


def drop_display(progress: Any) -> None:
    """Stop a rich Progress that drew nothing worth keeping, leaving no line behind: an error line that
    follows must be the only output (a terminal's display is erased; on a pipe, Progress.stop's closing
    newline is skipped)."""
    progress.live.transient = True
    progress.live.stop()
    progress.disable = True
