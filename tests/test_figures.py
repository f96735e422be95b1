"""One figure per metric: run's summary, check, compare, report.md and export show the same statistic of the
same samples, in ms, under the same name."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from factories import make_results, write_run
from rich.console import Console
from typer.testing import CliRunner

from otterbench.cli import app
from otterbench.results.figures import FIGURES, figure_ms, ms_text
from otterbench.results.summary import print_summary

runner = CliRunner()


def _bimodal(results: dict) -> dict:
    """Base's per-token samples slow in half the repeats: the pooled p50 and the median of per-repeat
    medians then differ (as on a shared host), so a reader that mixed the two would show two figures."""
    base = results["arms"][0]
    samples = np.asarray(base["latency"]["tpot_s"]["samples"]).reshape(base["latency"]["total_s"]["n"], -1)
    samples[::2] *= 1.8
    from otterbench.results.stats import summarize

    base["latency"]["tpot_s"] = summarize(samples.ravel())
    return results


def test_every_reader_shows_the_same_tpot_p50_ms(tmp_path: Path) -> None:
    results = _bimodal(make_results(repeats=6))
    base = results["arms"][0]
    expected = ms_text(figure_ms(base, "tpot"))
    assert figure_ms(base, "tpot") == base["latency"]["tpot_s"]["median"] * 1e3
    run_dir = write_run(tmp_path, results, "run")
    label = FIGURES["tpot"].label
    assert label == "TPOT p50 ms"

    summary = io.StringIO()
    print_summary(Console(file=summary, width=200, color_system=None), results)
    check = runner.invoke(app, ["check", str(run_dir), "--baseline", str(run_dir)])
    compare = runner.invoke(app, ["compare", str(run_dir), str(run_dir)])
    check_json = json.loads(
        runner.invoke(app, ["check", str(run_dir), "--baseline", str(run_dir), "--json"]).output
    )
    runner.invoke(app, ["report", str(run_dir), "--out", str(tmp_path / "report")])
    report_md = (tmp_path / "report" / "report.md").read_text()
    export = json.loads(runner.invoke(app, ["export", str(run_dir), "--format", "github"]).output)

    def base_row(text: str, *markers: str) -> str:
        return next(line for line in text.splitlines() if all(m in line for m in markers))

    assert label in summary.getvalue() and expected in base_row(summary.getvalue(), "│ base ")
    assert label in check.output and expected in base_row(check.output, f"tpot: {label}", "│ base ")
    assert label in compare.output and expected in base_row(compare.output, "base", label)
    assert "TPOT p50 / TPOT p90 ms" in report_md and expected in base_row(report_md, "| base |")
    tpot = next(f for f in check_json["findings"] if (f["metric"], f["subject"]) == ("tpot", "base"))
    entry = next(e for e in export if e["name"].endswith("/base TPOT p50"))
    assert tpot["baseline"] == entry["value"] == figure_ms(base, "tpot") and entry["unit"] == "ms"


def test_total_is_ms_everywhere(tmp_path: Path) -> None:
    results = make_results(repeats=6)
    run_dir = write_run(tmp_path, results, "run")
    export = json.loads(runner.invoke(app, ["export", str(run_dir), "--format", "github"]).output)
    entry = next(e for e in export if e["name"].endswith("/base total p50"))
    assert entry["unit"] == "ms" and entry["value"] == figure_ms(results["arms"][0], "total")
    compare = runner.invoke(app, ["compare", str(run_dir), str(run_dir)]).output
    assert FIGURES["total"].label in compare and "(s)" not in compare
