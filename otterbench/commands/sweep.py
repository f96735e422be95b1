"""`otterbench sweep`: a thin wrapper over `otterbench.run.sweep.run_sweep` with progress bars and a summary table."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from otterbench.commands.common import fail, stdout_console
from otterbench.commands.run_options import with_run_options
from otterbench.exits import EXIT_HELP, Exit
from otterbench.run.options import RunOptions

SWEEP_HELP = "\n\n".join(
    [
        "Run a suite once per point of a grid (--vary FIELD=V1,V2,... ; several --vary multiply).",
        "Results go to OUT/<suite>/sweeps/<sweep_id>/: index.json (the grid and each point's run folder and status) and one run folder per point. Re-running the same command resumes: points whose run is complete are skipped, the others are run (again). --sweep-id names the sweep; without it the id is a hash of the suite, the grid and the other options.",
        "It takes every option of `otterbench run`; each applies to every point.",
        EXIT_HELP + " A sweep exits 1 when a point had a failed arm or could not run; after 130 or 143, "
        "run the same command to resume.",
    ]
)

_SWEEP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class SweepView:
    """Draws a sweep's events: its folder before the first point, then each point's header and arm bars."""

    def __init__(self, console: Console) -> None:
        self.console, self.bars, self.view = console, None, None
        self.announced = False

    def __call__(self, event: Any) -> None:
        from otterbench.commands.run import ProgressView, progress_bars
        from otterbench.run.events import PointStarted

        if not isinstance(event, PointStarted):
            if self.view is not None:
                self.view(event)
            return
        self.close()
        if not self.announced:  # at the first point run, not earlier: bad input stays a single error line
            self.console.print(f"[bold]sweep[/] {event.sweep_dir} ({event.total} points)", soft_wrap=True)
            self.announced = True
        self.console.print(f"[bold]point {event.index + 1}/{event.total}[/] {event.label}")
        self.bars = progress_bars(self.console)
        self.bars.start()
        self.view = ProgressView(self.bars, self.console, header=False)

    def close(self) -> None:
        """Stop the current point's bars (after its run, and at the end of the sweep)."""
        if self.view is not None:
            self.view.close()
        if self.bars is not None:
            self.bars.stop()
        self.bars = self.view = None


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _summary_table(outcome: Any) -> Table:
    """One row per point: its values, status, run id and Otter's savings against each separate arm."""
    from otterbench.results.files import load_run

    savings: dict[int, dict[str, dict]] = {}
    for point in outcome.points:
        if point.status == "complete":
            results = load_run(outcome.sweep_dir / point.run_dir)
            savings[point.index] = {s["separate_arm"]: s for s in results["savings"]}
    separate = sorted({name for by_arm in savings.values() for name in by_arm})
    table = Table(title=f"sweep {outcome.sweep_dir.name} ({len(outcome.points)} points)")
    for column in ("#", *outcome.grid, "status", "run"):
        table.add_column(
            column, justify="right" if column in ("#", *outcome.grid) else "left", overflow="fold"
        )
    for name in separate:
        table.add_column(f"time saved vs {name}", justify="right")
        table.add_column(f"space saved vs {name}", justify="right")
    for point in outcome.points:
        status = point.status if not point.failed_arms else f"failed: {', '.join(point.failed_arms)}"
        colour = "green" if point.status == "complete" and not point.failed_arms else "red"
        cells = [str(point.index + 1), *(str(v) for v in point.values.values()), f"[{colour}]{status}[/]"]
        cells.append(Path(point.run_dir).name if point.run_dir else "-")
        for name in separate:
            saving = savings.get(point.index, {}).get(name, {})
            cells += [_pct(saving.get("extra_time_saved_pct")), _pct(saving.get("extra_space_saved_pct"))]
        table.add_row(*cells)
    return table


def _report_target(sweep_dir: Path, label: str) -> Path:
    slug = label.replace(" ", "_").replace("=", "-")
    return sweep_dir / "report" / slug if slug else sweep_dir / "report"


def _print_report_commands(console: Console, outcome: Any, build: bool) -> None:
    """Print (or with `build`, run) one `otterbench report` per group of complete points."""
    from otterbench.results.report import build_report
    from otterbench.run.sweep import report_groups

    groups = report_groups(outcome)
    if not groups:
        console.print("[dim]fewer than 2 complete points share the other fields: no curves to draw yet[/]")
    for label, run_dirs in groups:
        target = _report_target(outcome.sweep_dir, label)
        if build:
            written = build_report(run_dirs, target)
            console.print(f"report{f' ({label})' if label else ''}: {written[-1]}", soft_wrap=True)
        else:  # one group: the sweep folder stands for its points; several: each group's runs
            dirs = str(outcome.sweep_dir) if len(groups) == 1 else " ".join(str(path) for path in run_dirs)
            line = f"curves{f' ({label})' if label else ''}: otterbench report {dirs} --out {target}"
            console.print(
                line, soft_wrap=True, markup=False, highlight=False
            )  # a command to copy: no wrapping


@with_run_options
def sweep(
    options: RunOptions,
    vary: list[str] = typer.Option(None, "--vary", help="FIELD=V1,V2,... (repeatable: the grid multiplies)"),
    sweep_id: str = typer.Option(None, help="name of the sweep folder; the same id resumes the sweep"),
    report: bool = typer.Option(False, "--report", help="build the cost-growth report after the grid"),
) -> None:
    """Run a suite once per point of a grid; re-running the same command resumes (see SWEEP_HELP)."""
    from otterbench.paths import default_results_dir
    from otterbench.run.grid import parse_vary
    from otterbench.run.suite import load_suite

    console = Console(stderr=True)
    try:
        suite_name = load_suite(options.suite).name  # a bad suite fails here, before torch is imported
        grid = parse_vary(vary or [])  # so does a bad --vary
        from otterbench.run.sweep import (  # torch and transformers: only once the suite is good
            base_options,
            default_sweep_id,
            run_sweep,
            sweep_dir_for,
        )

        if sweep_id is not None and not _SWEEP_ID.fullmatch(sweep_id):
            raise ValueError(
                f"--sweep-id={sweep_id!r} is not a folder name: use letters, digits, '.', '_', '-'"
            )
        sweep_id = sweep_id or default_sweep_id(suite_name, grid, base_options(options))
        sweep_dir = sweep_dir_for(options.out or default_results_dir(), suite_name, sweep_id)
        view = SweepView(console)
        try:
            outcome = run_sweep(options, grid, sweep_dir, on_event=view)
        finally:
            view.close()
    except ValueError as error:  # every input error of the library is a ValueError with one line
        raise fail(str(error)) from None
    skipped = len(outcome.points) - len(outcome.ran)
    index = sweep_dir / "index.json"
    console.print(
        f"ran {len(outcome.ran)} point(s); {skipped} already complete; index: {index}", soft_wrap=True
    )
    stdout = stdout_console(pipe_width=150)  # logs are not 80-column terminals
    stdout.print(_summary_table(outcome))
    if outcome.exit_code in (Exit.INTERRUPTED, Exit.TERMINATED):
        console.print("[yellow]interrupted[/]: run the same command again to resume")
    _print_report_commands(stdout, outcome, build=report)
    raise typer.Exit(int(outcome.exit_code))
