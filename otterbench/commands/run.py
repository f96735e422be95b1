"""`otterbench run` and `otterbench suites`: thin wrappers over `otterbench.run.pipeline.run_suite`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from otterbench.commands.common import StdoutConsole, drop_display, fail, stdout_may_close
from otterbench.commands.run_options import with_run_options
from otterbench.exits import EXIT_HELP, Exit
from otterbench.run.events import (
    ArmFinished,
    ArmPhase,
    ArmProgress,
    ArmStarted,
    Notice,
    RunEvent,
    RunPhase,
    RunStarted,
)
from otterbench.run.options import RunOptions

if TYPE_CHECKING:
    from rich.progress import Progress

    from otterbench.run.record import ArmRecord
    from otterbench.run.resolve import ResolvedRun

RUN_HELP = (
    "Run every arm of a suite on one matched workload and measure memory and latency.\n\n"
    "Each arm (base LLM alone, LLM + separate model(s), Otter-inserted LLM) runs in its own freshly spawned "
    "process on the same prompts, seed and settings; results go to OUT/<suite>/<UTC time>-<id>/ as "
    "results.json (schema: otterbench/results/schema/results.schema.json) and arms.csv, rewritten after every "
    "arm.\n\n" + EXIT_HELP + ' Interrupted runs keep finished repeats and say status "interrupted".'
)


class ProgressView:
    """Draws a run's events: a bar per arm saying what it does (loading models, running...), notices, header."""

    def __init__(self, progress: Progress, console: Console, header: bool = True) -> None:
        self.progress, self.console, self.header, self.tasks = progress, console, header, {}
        self.preparing: Any = None  # the task that says what the run does before its first arm

    def __call__(self, event: RunEvent) -> None:
        if isinstance(event, RunPhase):
            self._preparing(event.phase)
        elif isinstance(event, RunStarted):
            self._preparing(None)
            if self.header:
                _print_header(self.console, event.resolved, event.run_dir)
        elif isinstance(event, ArmStarted):
            self.tasks[event.arm] = self.progress.add_task(
                f"{event.arm:<18} starting", total=event.total_steps
            )
        elif isinstance(event, ArmPhase) and event.arm in self.tasks:
            self.progress.update(self.tasks[event.arm], description=f"{event.arm:<18} {event.phase}")
        elif isinstance(event, ArmProgress):
            description = f"{event.arm:<18} running"
            self.progress.update(self.tasks[event.arm], completed=event.done, description=description)
        elif isinstance(event, ArmFinished):
            self._finished(event.record)
        elif isinstance(event, Notice):
            self.console.print(f"[yellow]warning:[/] {event.message}")

    def close(self) -> None:
        """Drop the preparing line: bad input found while preparing must leave only its error line."""
        self._preparing(None)
        if not self.tasks:  # no arm started: an empty display would end in a blank line before the error
            drop_display(self.progress)

    def _preparing(self, phase: str | None) -> None:
        """Show `phase` on the run's preparing line (None: the run has started, the line goes)."""
        if self.preparing is not None:
            self.progress.remove_task(self.preparing)
            self.preparing = None
        if phase is not None:
            self.preparing = self.progress.add_task(f"{'run':<18} {phase}", total=None)

    def _finished(self, record: ArmRecord) -> None:
        label = "[green]ok[/]" if record.ok else f"[red]{record.status}[/]"
        if record.name in self.tasks:
            self.progress.update(self.tasks[record.name], description=f"{record.name:<18} {label}")
        if not record.ok:
            self.console.print(f"[red]{record.name} {record.status.replace('_', ' ')}:[/] {record.error}")


def progress_bars(console: Console, disable: bool = False) -> Progress:
    """The progress display `run` and `sweep` draw their arms on."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=console, disable=disable)


@with_run_options
def run(
    options: RunOptions,
    json_output: bool = typer.Option(False, "--json", help="print results.json to stdout and nothing else"),
) -> None:
    from otterbench.paths import default_results_dir

    console = Console(stderr=True)
    try:
        config = options.to_config(default_results_dir())
        from otterbench.run.pipeline import run_suite  # torch and pandas: only once the options are good

        with progress_bars(console, disable=json_output) as progress:
            view = ProgressView(progress, console, header=not json_output)
            try:
                outcome = run_suite(config, view)
            finally:
                view.close()
    except ValueError as error:  # every input error of the library is a ValueError with one line
        raise fail(str(error)) from None
    except KeyboardInterrupt as stop:  # before the run folder existed: nothing to keep
        raise typer.Exit(int(getattr(stop, "exit_code", Exit.INTERRUPTED))) from None
    if outcome.write_error:
        console.print(f"[red]error:[/] {outcome.write_error}", soft_wrap=True)
    if json_output:
        with stdout_may_close():
            typer.echo(json.dumps(outcome.results))
    else:
        from otterbench.results.summary import print_summary

        out_console = StdoutConsole()
        if not out_console.is_terminal and "COLUMNS" not in os.environ:
            out_console = StdoutConsole(width=160)  # logs and pipes: keep each table row on one line
        print_summary(out_console, outcome.results, outcome.run_dir if outcome.saved else None)
        if not outcome.saved:  # no folder took the files: stdout keeps the only copy
            with stdout_may_close():
                typer.echo(json.dumps(outcome.results))
    raise typer.Exit(int(outcome.exit_code))


def _say_gate_readiness(console: Console, config: Any) -> None:
    """One line before measuring: whether this run's length can feed `otterbench check`, and what can."""
    from otterbench.results.power import gate_readiness

    ci_repeats = config.suite.presets.get("ci", {}).get("repeats")
    enough, line = gate_readiness(config.repeats, ci_repeats, len(config.arms))
    console.print(line, style=None if enough else "yellow", markup=False, highlight=False, soft_wrap=True)


def _print_header(console: Console, resolved: ResolvedRun, run_dir: Path) -> None:
    config = resolved.config
    models = ", ".join(
        f"{role}={config.source(role)}" for role in resolved.workload_info["model_fingerprints"]
    )
    otter = (
        f"Otter: saved insertion {config.insertion.path}"
        if config.insertion.path
        else f"Otter: undistilled insertion (ratio {config.insertion.ratio}; distill one with `otterbench distill`)"
    )
    console.print(
        f"[bold]{config.suite.name}[/] on {resolved.environment['device']} | profile "
        f"{config.profile} ({models}) | {resolved.dtype} | {resolved.workload.num_prompts} prompts x "
        f"{config.suite.max_new_tokens} tokens | {otter}, {config.insertion.layout} layout, {config.backend.name} engine"
    )
    if config.source("base") == "tiny":
        console.print(
            "[dim]tiny profile: random weights, text is not meaningful; it measures cost and checks "
            "that arms agree.[/]"
        )
    console.print(f"[dim]writing {run_dir}[/]", soft_wrap=True)
    _say_gate_readiness(console, config)


def suites() -> None:
    """List the suites and what each measures."""
    from otterbench.run.suite import list_suites

    table = Table(title="suites")
    table.add_column("name")
    table.add_column("description")
    for name, description in list_suites():
        table.add_row(name, description)
    StdoutConsole().print(table)
