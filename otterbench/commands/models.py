"""`otterbench models save`: a thin wrapper over `otterbench.models.export.save_profile_models`."""

from __future__ import annotations

from pathlib import Path

import typer

from otterbench.commands.common import StdoutConsole, fail
from otterbench.paths import writable_problem

app = typer.Typer(help="Work with model profiles.", no_args_is_help=True)


@app.command("save")
def save(
    directory: Path = typer.Argument(..., help="folder to write DIR/<role>/ checkpoints into"),
    profile: str = typer.Option("tiny", help="embedded profile to save (tiny)"),
) -> None:
    """Write the profile's models as Hugging Face checkpoints (DIR/base, DIR/reward_model, ...) with the
    tokenizer in each; run them with `otterbench run --base DIR/base --reward-model DIR/reward_model`.

    Exit codes: 0 ok, 2 bad input.
    """
    problem = writable_problem(directory, "DIRECTORY")  # before torch is imported: a bad folder is fast
    if problem:
        raise fail(problem)
    from otterbench.models.export import save_profile_models

    try:
        written = save_profile_models(profile, directory)
    except ValueError as error:
        raise fail(str(error)) from None
    except OSError as error:  # the disk filled or the folder went away while writing
        raise fail(f"could not write {directory}: {error.strerror or error}") from None
    for role, folder in written.items():
        StdoutConsole().print(f"{role}: {folder}")
