"""What every command shares: one unwrapped error line on stderr and the exit code that goes with it."""

from __future__ import annotations

import typer

from otterbench.exits import Exit


def fail(message: str, code: int = Exit.BAD_INPUT) -> typer.Exit:
    """Print `error: message` as one line on stderr; return the Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(int(code))
