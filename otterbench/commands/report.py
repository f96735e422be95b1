"""`otterbench report | compare | check | export`: everything rebuilt from saved results files.

Exit codes: 0 ok (check: PASS), 1 the check found a regression (FAIL), 2 bad input (missing/corrupt or
schema-invalid results, mismatched workloads, a malformed threshold), 3 the check was INCONCLUSIVE.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from otterbench.commands.common import stdout_console, stdout_may_close
from otterbench.exits import Exit
from otterbench.paths import writable_problem
from otterbench.results.thresholds import DEFAULT_ALPHA, DEFAULT_DEVIATION_TOLERANCE, DEFAULT_SPACE_NOISE_PCT

if TYPE_CHECKING:  # pandas, scipy and matplotlib load inside the commands that use them
    import pandas as pd

    from otterbench.results.findings import CheckResult, Finding, GateSettings

_errors = Console(stderr=True)
# the check's verdicts (otterbench.results.findings.Verdict values) and their exit codes
_VERDICT_EXIT = {"pass": Exit.OK, "fail": Exit.FAILED, "inconclusive": Exit.INCONCLUSIVE}


def _stdout() -> Console:
    """A console for tables; CI logs are not terminals, so give them room instead of rich's 80 columns."""
    return stdout_console(pipe_width=150)


def _fail_input(message: str) -> typer.Exit:
    """Print one line to stderr and return the exit-2 signal to raise."""
    _errors.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(Exit.BAD_INPUT)


def report(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(help="Run folders, sweep folders (index.json) or results.json files to report on."),
    ],
    out: Annotated[Path | None, typer.Option(help="Output folder (default: the run folder).")] = None,
    quality: Annotated[
        Path | None,
        typer.Option(help="quality.json from `otterbench distill` (default: the run's --otter folder's)."),
    ] = None,
) -> None:
    """Rebuild figures (PNG + SVG) and report.md from saved results; several runs or a sweep add cost-growth curves."""
    from otterbench.results.files import ResultsError
    from otterbench.results.report import build_report, report_target

    target = report_target(run_dirs, out)
    problem = writable_problem(target, "--out" if out else "--out (default: beside the results)")
    if problem:
        raise _fail_input(problem)
    try:
        written = build_report(run_dirs, out, quality)
    except (ResultsError, ValueError) as exc:
        raise _fail_input(str(exc)) from None
    except OSError as exc:  # read-only or full disk found while writing: one line, not a traceback
        raise _fail_input(
            f"cannot write the report to {target} ({exc.strerror}): pass --out a writable folder"
        ) from None
    report_md = next(path for path in reversed(written) if path.name == "report.md")
    _stdout().print(f"wrote {len(written)} files; report: {report_md}")


def _number(value: object) -> str:
    import pandas as pd

    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _rich_table(df: pd.DataFrame, title: str, figures: tuple[str, ...] = ()) -> Table:
    """`df` as a table; the `figures` columns printed as every table prints a figure (ms_text)."""
    import pandas as pd

    from otterbench.results.figures import ms_text

    table = Table(title=title)
    for column in df.columns:
        table.add_column(column, justify="right" if pd.api.types.is_numeric_dtype(df[column]) else "left")
    for row in df.itertuples(index=False):
        cells = [
            ms_text(None if pd.isna(value) else value) if column in figures else _number(value)
            for column, value in zip(df.columns, row, strict=True)
        ]
        table.add_row(*cells)
    return table


def _load_runs(*paths: Path) -> list[dict]:
    from otterbench.results.files import ResultsError, load_run

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
    from otterbench.results.compare import compare_arms, compare_savings
    from otterbench.results.files import describe_mismatch
    from otterbench.results.gate import WorkloadMismatch

    run_a, run_b = _load_runs(a, b)
    differences = describe_mismatch(run_a, run_b)
    if differences and not allow_mismatch:
        raise _fail_input(str(WorkloadMismatch(differences)))
    for line in differences:
        _stdout().print(f"[yellow]workload differs[/] {line}")
    _stdout().print(
        _rich_table(compare_arms(run_a, run_b), f"Arms: A={run_a['run_id']}  B={run_b['run_id']}", ("a", "b"))
    )
    _stdout().print(
        _rich_table(compare_savings(run_a, run_b), "Savings (percent; change in percentage points)")
    )


def _check_cells(f: Finding, normalized: bool) -> list[str]:
    """metric, baseline, run, change, limit and smallest detectable change of a finding, each with its unit."""
    from otterbench.results.figures import FIGURES, ms_text
    from otterbench.results.gate_data import detectable_text

    if f.metric in ("tpot", "total"):
        change = f"{f.change:+.1f}%" + (" (normalised)" if normalized else "")
        values = [ms_text(v) for v in (f.baseline, f.current)]
        limit = f"{f.threshold:g}%"
        return [
            f"{f.metric}: {FIGURES[f.metric].label}",
            *values,
            change,
            limit,
            detectable_text(f.detectable, "%"),
        ]
    if f.metric.endswith("_saved"):
        value = [_number(v) + ("%" if isinstance(v, float) else "") for v in (f.baseline, f.current)]
        change = "-" if f.change is None else f"{f.change:+.1f} pp"
        detectable = detectable_text(f.detectable, "pp")
        return [f.metric, *value, change, f"{f.threshold:g} pp", detectable]
    if f.metric == "deviation":
        return [f.metric, _number(f.baseline), _number(f.current), "-", f"{f.threshold:g}", "-"]
    return [f.metric, *("-" if v is None else str(v) for v in (f.baseline, f.current)), "-", "-", "-"]


def _verdict(f: Finding) -> str:
    if f.regressed:
        return "[red]REGRESSED[/]"
    if f.inconclusive:
        return "[magenta]inconclusive[/]"
    return "[yellow]warning[/]" if f.warning else "[green]ok[/]"


def _render_check(result: CheckResult, normalized: bool) -> None:
    from otterbench.results.findings import Verdict

    console = _stdout()
    table = Table(
        title="otterbench check: run vs baseline (latency: ms; detectable: smallest detectable change)"
    )
    for column in ("metric", "subject", "baseline", "run", "change", "limit", "detectable", "verdict"):
        table.add_column(column, no_wrap=column in ("metric", "subject"))
    for f in result.findings:
        metric, *cells = _check_cells(f, normalized)
        table.add_row(metric, f.subject, *cells, _verdict(f))
    console.print(table)
    for f in result.findings:
        console.print(f"  {f.metric} ({f.subject}): {f.evidence}", markup=False, highlight=False)
    for line in result.mismatches:
        console.print(f"[yellow]workload differs (allowed)[/] {line}")
    for f in result.warnings:
        console.print(f"[yellow]WARNING[/]: {f.metric} ({f.subject}): {f.evidence}", highlight=False)
    verdict = result.verdict
    if verdict is Verdict.FAIL:
        names = ", ".join(f"{f.metric} ({f.subject})" for f in result.regressions)
        console.print(f"[red]FAIL[/]: {len(result.regressions)} regression(s): {names}")
        if result.undecided:
            undecided = ", ".join(f"{f.metric} ({f.subject})" for f in result.undecided)
            console.print(f"  also undecided at their limits: {undecided}", highlight=False)
    elif verdict is Verdict.INCONCLUSIVE:
        names = ", ".join(f"{f.metric} ({f.subject})" for f in result.undecided)
        cut = ", ".join(f"{f.metric} ({f.subject})" for f in result.regressions)
        regressed = (
            f"; regressed in the repeats an incomplete run measured (re-run it to the end to decide): {cut}"
            if cut
            else "; nothing regressed"
        )
        console.print(
            f"[magenta]INCONCLUSIVE[/]: {len(result.undecided)} finding(s) the runs cannot decide at their limits: "
            f"{names}{regressed}; this is not a pass",
            highlight=False,
        )
    else:
        console.print("[green]PASS[/]: no monitored figure regressed, and each could have shown its limit")


def _gate_settings(
    alpha: float, space_noise: float, deviation_tolerance: float, normalize: bool
) -> GateSettings:
    """The command line's strictness, checked at the boundary (ValueError: exit 2)."""
    from otterbench.results.findings import GateSettings

    if not 0 < alpha < 1:
        raise ValueError(f"--alpha={alpha} must lie in (0, 1)")
    if space_noise < 0:
        raise ValueError(f"--space-noise={space_noise} must be >= 0")
    if not deviation_tolerance >= 0:
        raise ValueError(f"--deviation-tolerance={deviation_tolerance} must be >= 0")
    return GateSettings(
        alpha=alpha, space_noise_pct=space_noise, deviation_tolerance=deviation_tolerance, normalize=normalize
    )


def check(
    run: Annotated[Path, typer.Argument(help="The run to gate (folder or results.json).")],
    baseline: Annotated[Path, typer.Option(help="The baseline run (folder or results.json).")],
    max_regression: Annotated[
        str | None,
        typer.Option(
            help="One threshold for every metric (% for tpot/total, points for savings); "
            "default: tpot, total 5%, extra_time_saved 5 points, extra_space_saved 10 points."
        ),
    ] = None,
    threshold: Annotated[list[str] | None, typer.Option(help="Per-metric override, e.g. tpot=10%.")] = None,
    alpha: Annotated[float, typer.Option(help="Significance level of the tests.")] = DEFAULT_ALPHA,
    allow_mismatch: Annotated[bool, typer.Option(help="Gate even if the workloads differ.")] = False,
    space_noise: Annotated[
        float,
        typer.Option(
            help="Peak-memory noise floor, % of the base arm's peak: smaller growth is not a regression."
        ),
    ] = DEFAULT_SPACE_NOISE_PCT,
    deviation_tolerance: Annotated[
        float,
        typer.Option(
            help="Largest non-disruption max |logit diff| that passes, for results files without a yardstick."
        ),
    ] = DEFAULT_DEVIATION_TOLERANCE,
    normalize: Annotated[
        bool,
        typer.Option(
            help="Divide every measured repeat by the machine's speed at its moment, read from the base and "
            "separate arms: for machines other jobs share (it also cancels slowdowns every arm shares; "
            "docs/regression-gate.md)."
        ),
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
) -> None:
    """CI gate: PASS (exit 0), FAIL when a figure regressed beyond its limit, significantly (exit 1), or
    INCONCLUSIVE (exit 3) when the runs cannot detect a figure's limit or one is partial or interrupted."""
    from otterbench.results.gate import check_runs, parse_percent, parse_thresholds

    current, base = _load_runs(run, baseline)
    try:
        limit = None if max_regression is None else parse_percent(max_regression, "--max-regression")
        settings = _gate_settings(alpha, space_noise, deviation_tolerance, normalize)
        result = check_runs(current, base, parse_thresholds(threshold or []), limit, allow_mismatch, settings)
    except ValueError as exc:
        raise _fail_input(str(exc)) from None
    with stdout_may_close():  # `check ... | head -1`: the exit code stays the verdict's
        if json_output:
            print(json.dumps(result.to_dict(), indent=2, allow_nan=False))
        else:
            _render_check(result, normalize)
    raise typer.Exit(_VERDICT_EXIT[result.verdict.value])


def export(
    run: Annotated[Path, typer.Argument(help="The run to export (folder or results.json).")],
    format: Annotated[str, typer.Option("--format", help="Export format; only 'github'.")] = "github",
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")] = None,
) -> None:
    """Export a run for github-action-benchmark (tool: customSmallerIsBetter)."""
    from otterbench.results.export import github_benchmark_entries
    from otterbench.results.files import ResultsError, load_run, write_json_atomic

    if format != "github":
        raise _fail_input(f"--format={format!r} is not supported; use --format github")
    problem = writable_problem(out, "--out", is_file=True) if out is not None else None
    if problem:
        raise _fail_input(problem)
    try:
        results = load_run(run)
    except ResultsError as exc:
        raise _fail_input(str(exc)) from None
    entries = github_benchmark_entries(results)
    if not entries:  # an empty set would record nothing, silently, in the benchmark history
        raise _fail_input(f"{run}: no arm finished (run status {results.get('status')!r}): nothing to export")
    if out is None:
        with stdout_may_close():  # JSON has no NaN: the reader refused any
            print(json.dumps(entries, indent=2, allow_nan=False))
    else:
        try:
            write_json_atomic(out, entries)
        except OSError as exc:
            raise _fail_input(f"cannot write {out} ({exc.strerror}): pass --out a writable path") from None
        _stdout().print(f"wrote {len(entries)} entries to {out}")
