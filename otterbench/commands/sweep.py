"""`otterbench sweep`: a thin wrapper over `otterbench.run.sweep.run_sweep` with progress bars and a summary table."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from otterbench.commands.common import fail

SWEEP_HELP = "\n\n".join(
    [
        "Run a suite once per point of a grid (--vary FIELD=V1,V2,... ; several --vary multiply).",
        "Results go to OUT/<suite>/sweeps/<sweep_id>/: index.json (the grid and each point's run folder and status) and one run folder per point. Re-running the same command resumes: points whose run is complete are skipped, the others are run (again). --sweep-id names the sweep; without it the id is a hash of the suite, the grid and the other options.",
        "Exit codes: 0 every point complete; 1 a point had a failed arm or could not run; 2 bad input; 130 interrupted (index.json and the finished points are kept; run the same command to resume).",
    ]
)

_SWEEP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _point_runner(console: Console, sweep_dir: Path, total: int) -> Any:
    """Runs one point with a progress bar per arm, like `otterbench run`; names the sweep before the first."""
    from otterbench.commands.run import BarReporter
    from otterbench.run import pipeline as runner

    started: list[bool] = []

    def run_point(config: Any, point: Any, on_prelude: Any) -> Any:
        if not started:  # printed here, not earlier, so that bad input stays a single error line
            console.print(f"[bold]sweep[/] {sweep_dir} ({total} points)", soft_wrap=True)
            started.append(True)
        console.print(f"[bold]point {point.index + 1}/{total}[/] {point.label}")
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as progress:
            return runner.run_suite(config, BarReporter(progress, console), on_prelude=on_prelude)

    return run_point


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
        else:
            dirs = " ".join(str(path) for path in run_dirs)
            line = f"curves{f' ({label})' if label else ''}: otterbench report {dirs} --out {target}"
            console.print(
                line, soft_wrap=True, markup=False, highlight=False
            )  # a command to copy: no wrapping


def _base_options(**values: Any) -> dict[str, Any]:
    """resolve_run_config keyword arguments from the command's options (None: the suite's value)."""
    suite_keys = ("batch_size", "max_new_tokens", "k", "weight", "alpha", "num_prompts", "repeats", "warmup")
    base = {key: value for key, value in values.items() if key not in suite_keys and value is not None}
    overrides = {key: values[key] for key in suite_keys if values[key] is not None}
    return {**base, "suite_overrides": overrides or None}


def sweep(
    suite: str = typer.Option("safety", help="suite name (see `otterbench suites`) or a suite TOML path"),
    vary: list[str] = typer.Option(None, "--vary", help="FIELD=V1,V2,... (repeatable: the grid multiplies)"),
    sweep_id: str = typer.Option(None, help="name of the sweep folder; the same id resumes the sweep"),
    report: bool = typer.Option(False, "--report", help="build the cost-growth report after the grid"),
    profile: str = typer.Option(None, help="model profile of the suite: tiny, paper, ..."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N"),
    arms: str = typer.Option(None, help="comma-separated arms to run instead of the suite's"),
    batch_size: int = typer.Option(None, help="prompts decoded together (every point)"),
    max_new_tokens: int = typer.Option(None, help="new tokens per prompt (every point)"),
    k: int = typer.Option(None, help="ARGS top-k (every point)"),
    weight: float = typer.Option(None, help="ARGS reward weight (every point)"),
    alpha: float = typer.Option(None, help="DExperts alpha (every point)"),
    num_prompts: int = typer.Option(None, help="prompts of the suite's file to use (every point)"),
    repeats: int = typer.Option(None, help="measured runs per arm (every point)"),
    warmup: int = typer.Option(None, help="unmeasured runs per arm first (every point)"),
    otter: Path = typer.Option(None, help="saved insertion (from `otterbench distill`)"),
    otter_ratio: float = typer.Option(None, help="insertion size when no --otter is given"),
    layout: str = typer.Option(None, help="Otter layout: split or fused"),
    isolation: str = typer.Option(None, help="process (one fresh process per arm) or inline"),
    out: Path = typer.Option(None, help="results root (default: ./results or $OTTERBENCH_RESULTS_DIR)"),
) -> None:
    """Run a suite once per point of a grid; re-running the same command resumes (see SWEEP_HELP)."""
    from otterbench.run.pipeline import default_results_dir
    from otterbench.run.suite import load_suite
    from otterbench.run.sweep import default_sweep_id, expand_grid, parse_vary, run_sweep, sweep_dir_for

    console = Console(stderr=True)
    base = _base_options(
        **{"profile": profile, "device": device, "layout": layout, "isolation": isolation},
        **{"otter_path": str(otter) if otter else None, "otter_ratio": otter_ratio},
        **{"arms": [a.strip() for a in arms.split(",") if a.strip()] if arms else None},
        **{"batch_size": batch_size, "max_new_tokens": max_new_tokens, "k": k, "weight": weight},
        **{"alpha": alpha, "num_prompts": num_prompts, "repeats": repeats, "warmup": warmup},
    )
    try:
        grid = parse_vary(vary or [])
        if sweep_id is not None and not _SWEEP_ID.fullmatch(sweep_id):
            raise ValueError(
                f"--sweep-id={sweep_id!r} is not a folder name: use letters, digits, '.', '_', '-'"
            )
        suite_name = load_suite(suite).name
        sweep_dir = sweep_dir_for(
            out or default_results_dir(), suite_name, sweep_id or default_sweep_id(suite_name, grid, base)
        )
        run_point = _point_runner(console, sweep_dir, len(expand_grid(grid)))
        outcome = run_sweep(suite, grid, sweep_dir, base, run_point)
    except ValueError as error:  # every input error of the library is a ValueError with one line
        raise fail(str(error)) from None
    skipped = len(outcome.points) - len(outcome.ran)
    index = sweep_dir / "index.json"
    console.print(
        f"ran {len(outcome.ran)} point(s); {skipped} already complete; index: {index}", soft_wrap=True
    )
    stdout = Console() if sys.stdout.isatty() else Console(width=150)  # logs are not 80-column terminals
    stdout.print(_summary_table(outcome))
    if outcome.exit_code == 130:
        console.print("[yellow]interrupted[/]: run the same command again to resume")
    _print_report_commands(stdout, outcome, build=report)
    raise typer.Exit(outcome.exit_code)
