"""`otterbench report`: figures and report.md rebuilt from saved results, never by re-running."""

from __future__ import annotations

import json
from pathlib import Path

from otterbench.results.files import ResultsError, load_run, results_path
from otterbench.results.report.accel import accel_section, has_speculation, plot_accel
from otterbench.results.report.growth import plot_cost_growth, sweep_field
from otterbench.results.report.markdown import render_run, render_sweep
from otterbench.results.report.plots import plot_latency, plot_memory, plot_tpot_distribution
from otterbench.results.report.quality import find_quality
from otterbench.results.report.savings_figure import plot_savings
from otterbench.results.report.style import save_figure

REPORT_FILE = "report.md"
SWEEP_INDEX = "index.json"  # written by otterbench.run.sweep; one entry per point with its run folder
# the savings figure first: it is the claim; the others explain where the numbers come from
RUN_FIGURES = {
    "savings": plot_savings,
    "memory": plot_memory,
    "latency": plot_latency,
    "tpot_distribution": plot_tpot_distribution,
}


def write_run_report(results: dict, out_dir: Path, quality_path: str | Path | None = None) -> list[Path]:
    """Write one run's figures (PNG + SVG) and report.md into `out_dir`; return every path written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    figures = dict(RUN_FIGURES)
    if has_speculation(results):
        figures["accel"] = plot_accel
    for stem, plot in figures.items():
        written += save_figure(plot(results), out_dir, stem)
    images = [path.name for path in written if path.suffix == ".png"]
    report = out_dir / REPORT_FILE
    text = render_run(results, images, find_quality(results, quality_path))
    if has_speculation(results):
        text += "\n" + "\n".join(accel_section(results))
    report.write_text(text, encoding="utf-8")
    return [*written, report]


def expand_sweeps(paths: list[str | Path]) -> list[Path]:
    """Run folders of `paths`, a sweep folder (one holding index.json) standing for its complete points."""
    run_dirs: list[Path] = []
    for path in map(Path, paths):
        index = path / SWEEP_INDEX
        if not index.is_file():
            run_dirs.append(path)
            continue
        points = json.loads(index.read_text("utf-8"))["points"]
        done = [path / p["run_dir"] for p in points if p.get("status") == "complete" and p.get("run_dir")]
        if not done:
            raise ResultsError(
                f"{index}: no point of this sweep is complete; run the sweep to completion first"
            )
        run_dirs += done
    return run_dirs


def report_target(run_dirs: list[str | Path], out_dir: str | Path | None = None) -> Path:
    """Where `build_report` writes: `out_dir`, else one run's own folder, else report/ in the sweep or beside the runs."""
    if out_dir:
        return Path(out_dir)
    sweep_dir = next((Path(p) for p in run_dirs if (Path(p) / SWEEP_INDEX).is_file()), None)
    if sweep_dir is not None:
        return sweep_dir / "report"
    first = results_path(run_dirs[0]).parent
    return first if len(run_dirs) == 1 else first.parent / "report"


def build_report(
    run_dirs: list[str | Path], out_dir: str | Path | None = None, quality_path: str | Path | None = None
) -> list[Path]:
    """Report one run into its own folder (or `out_dir`), or several runs (or a sweep) with cost growth."""
    target = report_target(run_dirs, out_dir)
    run_dirs = expand_sweeps(run_dirs)
    runs = [load_run(path) for path in run_dirs]
    if len(runs) == 1:
        return write_run_report(runs[0], target, quality_path)
    written: list[Path] = []
    links = {}
    for run in runs:
        written += write_run_report(run, target / run["run_id"], quality_path)
        links[run["run_id"]] = f"{run['run_id']}/{REPORT_FILE}"
    growth = plot_cost_growth(runs)
    images = []
    if growth is not None:
        written += save_figure(growth, target, "cost_growth")
        images.append("cost_growth.png")
    field = sweep_field(runs)
    if field:
        runs = sorted(runs, key=lambda run: run["config"][field])
    report = target / REPORT_FILE
    report.write_text(render_sweep(runs, field, links, images), encoding="utf-8")
    return [*written, report]
