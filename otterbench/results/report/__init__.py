"""`otterbench report`: figures and report.md rebuilt from saved results, never by re-running."""

from __future__ import annotations

from pathlib import Path

from otterbench.results.files import load_run, results_path
from otterbench.results.report.markdown import render_run, render_sweep
from otterbench.results.report.plots import (
    plot_cost_growth,
    plot_latency,
    plot_memory,
    plot_tpot_distribution,
    save_figure,
    sweep_field,
)
from otterbench.results.report.quality import find_quality

REPORT_FILE = "report.md"


def write_run_report(results: dict, out_dir: Path, quality_path: str | Path | None = None) -> list[Path]:
    """Write one run's figures (PNG + SVG) and report.md into `out_dir`; return every path written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    figures = {"memory": plot_memory, "latency": plot_latency, "tpot_distribution": plot_tpot_distribution}
    for stem, plot in figures.items():
        written += save_figure(plot(results), out_dir, stem)
    images = [path.name for path in written if path.suffix == ".png"]
    report = out_dir / REPORT_FILE
    quality = find_quality(results, quality_path)
    report.write_text(render_run(results, images, quality), encoding="utf-8")
    return [*written, report]


def build_report(
    run_dirs: list[str | Path], out_dir: str | Path | None = None, quality_path: str | Path | None = None
) -> list[Path]:
    """Report one run into its own folder (or `out_dir`), or several runs plus cost-growth curves."""
    runs = [load_run(path) for path in run_dirs]
    if len(runs) == 1:
        target = Path(out_dir) if out_dir else results_path(run_dirs[0]).parent
        return write_run_report(runs[0], target, quality_path)
    target = Path(out_dir) if out_dir else results_path(run_dirs[0]).parent.parent / "report"
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
