"""What every command shares: one unwrapped error line on stderr and the exit code that goes with it."""

from __future__ import annotations

import typer

from otterbench.exits import Exit


def fail(message: str, code: int = Exit.BAD_INPUT) -> typer.Exit:
    """Print `error: line` on stderr for each line of `message`; return the Exit to raise."""
    for line in message.splitlines() or [""]:
        typer.echo(f"error: {line}", err=True)
    return typer.Exit(int(code))
