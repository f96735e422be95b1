"""The `otterbench` command line: parse, build a config, call one library function.

Every command lives in `otterbench/commands/<area>.py` and works from Python too; this file only wires them.
Exit codes: `otterbench.exits.Exit`.
"""

from __future__ import annotations

import os
import sys

import typer

from otterbench.commands import bench, distill, envinfo, models, plan, report, run, sweep
from otterbench.exits import EXIT_HELP, Exit
from otterbench.quiet import silence_progress_bars

app = typer.Typer(
    name="otterbench",
    help=(
        "Measure Otter (parameters inserted into a frozen LLM that predict a steering signal in the same "
        "forward pass) against steering with separate models (ARGS reward model, DExperts experts).\n\n"
        + EXIT_HELP
    ),
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command("run", help=run.RUN_HELP)(run.run)
app.command("suites")(run.suites)
app.command("env")(envinfo.env)
app.command("distill")(distill.distill)
app.command("bench-insert")(bench.bench_insert)
app.command("report")(report.report)
app.command("compare")(report.compare)
app.command("check")(report.check)
app.command("export")(report.export)
app.command("sweep", help=sweep.SWEEP_HELP)(sweep.sweep)
app.command("plan")(plan.plan)
app.add_typer(models.app, name="models")


def _print_version(asked: bool) -> None:
    if asked:
        from otterbench.provenance import source_state

        state = source_state()
        commit = (
            f" (commit {state.git_commit[:10]}{', dirty' if state.git_dirty else ''})"
            if state.git_commit
            else ""
        )
        print(f"otterbench {state.version}{commit}")
        raise typer.Exit()


@app.callback()
def _before_every_command(
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=_print_version,
        help="Print otterbench's version (and the commit of the checkout holding its source) and exit.",
    ),
) -> None:
    # before any command imports transformers; the arm processes a run spawns inherit it
    silence_progress_bars()


def main() -> None:
    """Console-script entry point.

    A stopped run (130, 143) has written its files and printed its summary when the command returns; the
    interpreter's own teardown (freeing torch and the models) can then take seconds on a busy machine, so
    the process ends at once instead: a stopped run exits within a second or two.
    """
    try:
        app()
    except SystemExit as stop:
        if stop.code in (Exit.INTERRUPTED, Exit.TERMINATED):
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(stop.code)
        raise
