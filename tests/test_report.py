"""report: figures carry titles and labelled axes, files are written, failed arms stay visible."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from factories import make_results, write_run
from matplotlib.figure import Figure
from typer.testing import CliRunner

import otterbench.results.report
from otterbench.cli import app
from otterbench.results.report.markdown import caveats, render_run
from otterbench.results.report.plots import (
    arm_colour,
    plot_cost_growth,
    plot_latency,
    plot_memory,
    plot_tpot_distribution,
)

runner = CliRunner()


@pytest.fixture(scope="module")
def results() -> dict:
    return make_results()


def _assert_labelled(fig: Figure) -> None:
    assert fig.axes
    for ax in fig.axes:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel(), (ax.get_title(), ax.get_xlabel())


@pytest.mark.parametrize("plot", [plot_memory, plot_latency, plot_tpot_distribution])
def test_every_figure_has_title_and_axis_labels(plot: object, results: dict) -> None:
    fig = plot(results)
    _assert_labelled(fig)
    tick_labels = [label.get_text() for label in fig.axes[0].get_xticklabels()]
    assert tick_labels == [arm["name"] for arm in results["arms"]]


def test_one_colour_per_arm_across_figures(results: dict) -> None:
    latency = plot_latency(results).axes[1]
    colours = [bar.get_facecolor() for bar in latency.patches]
    from matplotlib.colors import to_rgba

    assert colours == [to_rgba(arm_colour(arm["name"])) for arm in results["arms"]]
    assert len({arm_colour(arm["name"]) for arm in results["arms"]}) == len(results["arms"])


def test_failed_arm_is_shown_as_failed(results: dict) -> None:
    failed = copy.deepcopy(results)
    failed["arms"][3].update(
        status="failed", error="CUDA out of memory", latency=None, memory=None, energy=None
    )
    for plot in (plot_memory, plot_latency, plot_tpot_distribution):
        texts = [text.get_text().strip() for text in plot(failed).axes[0].texts]
        assert "failed" in texts
    assert "**failed**: CUDA out of memory" in render_run(failed, [])


def test_report_command_writes_figures_and_markdown(tmp_path: Path, results: dict) -> None:
    run_dir = write_run(tmp_path, results)
    outcome = runner.invoke(app, ["report", str(run_dir), "--out", str(tmp_path / "out")])
    assert outcome.exit_code == 0, outcome.output
    out = tmp_path / "out"
    for stem in ("memory", "latency", "tpot_distribution"):
        for suffix in (".png", ".svg"):
            assert (out / f"{stem}{suffix}").stat().st_size > 1000
    report = (out / "report.md").read_text()
    assert "up to 86.5% extra space and 98.5% extra time" in report
    saving = results["savings"][0]
    assert f"{saving['extra_time_saved_pct']:.1f}%" in report
    assert "faithful" in report and "optimized" in report and "## Non-disruption" in report
    assert "![memory.png](memory.png)" in report


def test_caveats_follow_the_results(results: dict) -> None:
    assert caveats(results) == []
    cheap = copy.deepcopy(results)
    cheap["config"].update(profile="tiny", device="cpu")
    cheap["otter"]["distilled"] = False
    cheap["isolation"] = "inline"
    text = " ".join(caveats(cheap))
    for phrase in ("random weights", "Undistilled Otter", "CPU timings", "Inline isolation"):
        assert phrase in text


def test_several_runs_add_cost_growth_curves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = [make_results(seed=i, max_new_tokens=steps, steps=steps) for i, steps in enumerate((8, 16))]
    fig = plot_cost_growth(runs)
    _assert_labelled(fig)
    assert fig.axes[0].get_xlabel() == "max_new_tokens"
    lines = {
        line.get_label(): line for line in fig.axes[0].get_lines() if not line.get_label().startswith("_")
    }
    assert set(lines) == {"args-faithful", "args-optimized", "otter-args"}
    assert list(lines["otter-args"].get_xdata()) == [8, 16]
    assert plot_cost_growth([runs[0], copy.deepcopy(runs[0])]) is None
    dirs = [write_run(tmp_path, run) for run in runs]
    # per-run reports are covered above; here only which ones the sweep asks for, to keep the test fast
    asked = []
    monkeypatch.setattr(
        otterbench.results.report, "write_run_report", lambda run, out, quality=None: asked.append(out) or []
    )
    outcome = runner.invoke(app, ["report", *map(str, dirs), "--out", str(tmp_path / "sweep")])
    assert outcome.exit_code == 0, outcome.output
    assert (tmp_path / "sweep" / "cost_growth.png").exists()
    assert asked == [tmp_path / "sweep" / run["run_id"] for run in runs]
    assert "The runs vary `max_new_tokens`." in (tmp_path / "sweep" / "report.md").read_text()
