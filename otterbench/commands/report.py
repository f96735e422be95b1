"""`otterbench report | compare | check | export`: everything rebuilt from saved results files.

Exit codes: 0 ok, 1 the check found a regression, 2 bad input (missing/corrupt results, mismatched
workloads, a malformed threshold).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from otterbench.exits import Exit
from otterbench.results.export import github_benchmark_entries
from otterbench.results.files import ResultsError, describe_mismatch, load_run, write_json_atomic
from otterbench.results.gate import (
    DEFAULT_ALPHA,
    DEFAULT_SPACE_NOISE_PCT,
    CheckResult,
    Finding,
    WorkloadMismatch,
    check_runs,
    compare_arms,
    compare_savings,
    parse_percent,
    parse_thresholds,
)
from otterbench.results.report import build_report
from otterbench.results.report.markdown import format_seconds

_errors = Console(stderr=True)


def _stdout() -> Console:
    """A console for tables; CI logs are not terminals, so give them room instead of rich's 80 columns."""
    return Console() if sys.stdout.isatty() else Console(width=150)


def _fail_input(message: str) -> typer.Exit:
    """Print one line to stderr and return the exit-2 signal to raise."""
    _errors.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(Exit.BAD_INPUT)


def report(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run folders (or results.json files) to report on.")],
    out: Annotated[Path | None, typer.Option(help="Output folder (default: the run folder).")] = None,
    quality: Annotated[
        Path | None,
        typer.Option(help="quality.json from `otterbench distill` (default: the run's --otter folder's)."),
    ] = None,
) -> None:
    """Rebuild figures (PNG + SVG) and report.md from saved results; several runs add cost-growth curves."""
    try:
        written = build_report(run_dirs, out, quality)
    except (ResultsError, ValueError) as exc:
        raise _fail_input(str(exc)) from None
    report_md = next(path for path in reversed(written) if path.name == "report.md")
    _stdout().print(f"wrote {len(written)} files; report: {report_md}")


def _number(value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _rich_table(df: pd.DataFrame, title: str) -> Table:
    table = Table(title=title)
    for column in df.columns:
        table.add_column(column, justify="right" if pd.api.types.is_numeric_dtype(df[column]) else "left")
    for row in df.itertuples(index=False):
        table.add_row(*(_number(value) for value in row))
    return table


def _load_runs(*paths: Path) -> list[dict]:
    try:
        return [load_run(path) for path in paths]
    except ResultsError as exc:
        raise _fail_input(str(exc)) from None


def compare(
    a: Annotated[Path, typer.Argument(help="Run A (folder or results.json).")],
    b: Annotated[Path, typer.Argument(help="Run B (folder or results.json).")],
    allow_mismatch: Annotated[bool, typer.Option(help="Compare even if the workloads differ.")] = False,
) -> None:
    """Per-arm metrics and savings of two runs side by side, with B/A ratios."""
    run_a, run_b = _load_runs(a, b)
    differences = describe_mismatch(run_a, run_b)
    if differences and not allow_mismatch:
        raise _fail_input(str(WorkloadMismatch(differences)))
    for line in differences:
        _stdout().print(f"[yellow]workload differs[/] {line}")
    _stdout().print(
        _rich_table(compare_arms(run_a, run_b), f"Arms: A={run_a['run_id']}  B={run_b['run_id']}")
    )
    _stdout().print(
        _rich_table(compare_savings(run_a, run_b), "Savings (percent; change in percentage points)")
    )


def _check_cells(f: Finding) -> list[str]:
    """baseline, run, change and threshold of a finding, each with its unit."""
    if f.metric == "otter_tpot":
        return [
            format_seconds(f.baseline),
            format_seconds(f.current),
            f"{f.change:+.1f}%",
            f"{f.threshold:g}%",
        ]
    if f.metric.endswith("_saved"):
        value = [_number(v) + ("%" if isinstance(v, float) else "") for v in (f.baseline, f.current)]
        change = "-" if f.change is None else f"{f.change:+.1f} pp"
        return [*value, change, f"{f.threshold:g} pp"]
    return [str(f.baseline), str(f.current), "-", "-"]


def _render_check(result: CheckResult) -> None:
    console = _stdout()
    table = Table(title="otterbench check: run vs baseline")
    for column in ("metric", "subject", "baseline", "run", "change", "limit", "verdict"):
        table.add_column(column, no_wrap=column in ("metric", "subject"))
    for f in result.findings:
        verdict = "[red]REGRESSED[/]" if f.regressed else "[green]ok[/]"
        table.add_row(f.metric, f.subject, *_check_cells(f), verdict)
    console.print(table)
    for f in result.findings:
        console.print(f"  {f.metric} ({f.subject}): {f.evidence}", markup=False, highlight=False)
    for line in result.mismatches:
        console.print(f"[yellow]workload differs (allowed)[/] {line}")
    if result.passed:
        console.print("[green]PASS[/]: no monitored figure regressed")
    else:
        names = ", ".join(f"{f.metric} ({f.subject})" for f in result.regressions)
        console.print(f"[red]FAIL[/]: {len(result.regressions)} regression(s): {names}")


def check(
    run: Annotated[Path, typer.Argument(help="The run to gate (folder or results.json).")],
    baseline: Annotated[Path, typer.Option(help="The baseline run (folder or results.json).")],
    max_regression: Annotated[
        str | None,
        typer.Option(
            help="One threshold for every metric (% for latency, points for savings); "
            "default: otter_tpot 25%, extra_time_saved and extra_space_saved 10 points."
        ),
    ] = None,
    threshold: Annotated[
        list[str] | None, typer.Option(help="Per-metric override, e.g. otter_tpot=5%.")
    ] = None,
    alpha: Annotated[float, typer.Option(help="Significance level of the tests.")] = DEFAULT_ALPHA,
    allow_mismatch: Annotated[bool, typer.Option(help="Gate even if the workloads differ.")] = False,
    space_noise: Annotated[
        float,
        typer.Option(
            help="Peak-memory noise floor, % of the base arm's peak: smaller growth is not a regression."
        ),
    ] = DEFAULT_SPACE_NOISE_PCT,
    json_output: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
) -> None:
    """CI gate: exit 1 when a monitored figure regresses beyond its threshold, significantly."""
    current, base = _load_runs(run, baseline)
    try:
        limit = None if max_regression is None else parse_percent(max_regression, "--max-regression")
        overrides = parse_thresholds(threshold or [])
        if not 0 < alpha < 1:
            raise ValueError(f"--alpha={alpha} must lie in (0, 1)")
        if space_noise < 0:
            raise ValueError(f"--space-noise={space_noise} must be >= 0")
        result = check_runs(
            current, base, overrides, limit, alpha, allow_mismatch, space_noise_pct=space_noise
        )
    except ValueError as exc:
        raise _fail_input(str(exc)) from None
    if json_output:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        _render_check(result)
    if not result.passed:
        raise typer.Exit(Exit.FAILED)


def export(
    run: Annotated[Path, typer.Argument(help="The run to export (folder or results.json).")],
    format: Annotated[str, typer.Option("--format", help="Export format; only 'github'.")] = "github",
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")] = None,
) -> None:
    """Export a run for github-action-benchmark (tool: customSmallerIsBetter)."""
    if format != "github":
        raise _fail_input(f"--format={format!r} is not supported; use --format github")
    try:
        entries = github_benchmark_entries(load_run(run))
    except ResultsError as exc:
        raise _fail_input(str(exc)) from None
    if out is None:
        print(json.dumps(entries, indent=2))
    else:
        write_json_atomic(out, entries)
        _stdout().print(f"wrote {len(entries)} entries to {out}")
