"""report: figures carry titles and labelled axes, files are written, failed arms stay visible."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from factories import make_results, write_run
from matplotlib.figure import Figure
from typer.testing import CliRunner

import otterbench.results.report
from otterbench.cli import app
from otterbench.results.report.growth import plot_cost_growth
from otterbench.results.report.markdown import caveats, render_run
from otterbench.results.report.plots import plot_latency, plot_memory, plot_tpot_distribution
from otterbench.results.report.savings_figure import plot_savings
from otterbench.results.report.style import PLAIN_TICKS, arm_colour

runner = CliRunner()


@pytest.fixture(scope="module")
def results() -> dict:
    return make_results()


def _assert_labelled(fig: Figure) -> None:
    assert fig.axes
    for ax in fig.axes:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel(), (ax.get_title(), ax.get_xlabel())


def _titles(fig: Figure) -> str:
    return " ".join([fig.get_suptitle(), *(ax.get_title() for ax in fig.axes)])


@pytest.mark.parametrize("plot", [plot_memory, plot_latency, plot_tpot_distribution])
def test_every_figure_has_title_and_axis_labels(plot: object, results: dict) -> None:
    fig = plot(results)
    _assert_labelled(fig)
    tick_labels = [label.get_text().split("\n")[0] for label in fig.axes[0].get_xticklabels()]
    assert tick_labels == [arm["name"] for arm in results["arms"]]
    # the real device and layout, not the config's "auto"
    assert "NVIDIA H100 80GB HBM3" in _titles(fig) and "split layout" in _titles(fig)


def test_fused_and_otterless_runs_say_so_in_titles(results: dict) -> None:
    fused = copy.deepcopy(results)
    fused["otter"]["layout"] = "fused"
    assert "fused layout" in _titles(plot_memory(fused))
    plain = make_results(arms=("base", "args-faithful"))
    assert "no Otter arm" in _titles(plot_savings(plain))


def test_latency_shows_n_and_plain_ms_ticks(results: dict) -> None:
    fig = plot_latency(results)
    fig.canvas.draw()
    tpot, total = fig.axes[1], fig.axes[2]
    repeats = results["config"]["repeats"]
    assert all(label.get_text().endswith(f"n={repeats}") for label in total.get_xticklabels())
    assert "n=" in tpot.get_xticklabels()[0].get_text()
    ticks = [label.get_text() for label in total.get_yticklabels() if label.get_text()]
    assert ticks and all("e" not in tick and "$" not in tick for tick in ticks), ticks


def test_plain_ticks_never_use_scientific_notation() -> None:
    assert [PLAIN_TICKS(v, 0) for v in (3.0, 12.5, 2500.0, 17500.0)] == ["3", "12.5", "2,500", "17,500"]


def test_tpot_log_axis_has_plain_tick_labels(results: dict) -> None:
    fig = plot_tpot_distribution(results)
    fig.canvas.draw()
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"  # the factory's faithful arm is 12x the base's per-token time
    ticks = [label.get_text() for label in ax.get_yticklabels(minor=True) + ax.get_yticklabels()]
    assert any(ticks) and not any("times" in tick or "^" in tick for tick in ticks), ticks


def _hlines_at(ax: object) -> set[float]:
    return {
        round(float(line.get_ydata()[0]), 3) for line in ax.get_lines() if len(set(line.get_ydata())) == 1
    }


def test_savings_figure_marks_paper_and_planner(results: dict) -> None:
    fig = plot_savings(results)
    _assert_labelled(fig)
    space_extra, time_extra, space_saved, time_saved = fig.axes
    assert 86.5 in _hlines_at(space_saved) and 98.5 in _hlines_at(time_saved)
    legend = " ".join(t.get_text() for t in fig.legends[0].get_texts())
    assert "paper: saves 86.5% extra space / 98.5% extra time" in legend
    assert "planner's prediction: not recorded in results.json" in legend
    # extra over base, not totals: the faithful arm's bar is its peak minus base's
    arms = {arm["name"]: arm for arm in results["arms"]}
    extra = arms["args-faithful"]["memory"]["peak_bytes"] - arms["base"]["memory"]["peak_bytes"]
    assert space_extra.patches[0].get_height() == pytest.approx(extra / 2**30)
    predicted = copy.deepcopy(results)
    for saving in predicted["savings"]:
        saving["predicted"] = {"space_pct": 91.25, "time_bytes_pct": 97.75}
    fig = plot_savings(predicted)
    marks = [
        line.get_segments()[0][0][1] for line in fig.axes[3].collections if hasattr(line, "get_segments")
    ]
    assert 97.75 in marks
    legend = " ".join(t.get_text() for t in fig.legends[0].get_texts())
    assert "planner's prediction" in legend and "not recorded" not in legend


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
    for stem in ("savings", "memory", "latency", "tpot_distribution"):
        for suffix in (".png", ".svg"):
            assert (out / f"{stem}{suffix}").stat().st_size > 1000
    report = (out / "report.md").read_text()
    assert "up to 86.5% extra space and 98.5% extra time" in report
    saving = results["savings"][0]
    assert f"{saving['extra_time_saved_pct']:.1f}%" in report
    assert "faithful" in report and "optimized" in report and "## Non-disruption" in report
    assert "![memory.png](memory.png)" in report
    assert report.index("![savings.png]") < report.index("![memory.png]")


def test_report_on_a_run_without_otter(tmp_path: Path) -> None:
    plain = make_results(arms=("base", "args-faithful"))
    plain["non_disruption"] = {
        "layout": "split",
        "exact": None,
        "max_abs_logit_diff": None,
        "argmax_agreement": None,
    }
    run_dir = write_run(tmp_path, plain)
    outcome = runner.invoke(app, ["report", str(run_dir), "--out", str(tmp_path / "out")])
    assert outcome.exit_code == 0, outcome.output
    report = (tmp_path / "out" / "report.md").read_text()
    assert "Not measured: no Otter arm ran" in report


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
    series = {container.get_label(): container for container in fig.axes[0].containers}
    assert set(series) == {"args-faithful", "args-optimized", "otter-args"}
    assert list(series["otter-args"].lines[0].get_xdata()) == [8, 16]
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


def test_cost_growth_integer_ticks_intervals_and_savings() -> None:
    runs = [make_results(seed=i, batch_size=b) for i, b in enumerate((1, 4))]
    fig = plot_cost_growth(runs)
    fig.canvas.draw()
    ax_time, _, ax_saved = fig.axes
    assert [t.get_text() for t in ax_time.get_xticklabels()] == ["1", "4"]
    assert ax_time.containers and all(c.has_yerr for c in ax_time.containers)  # whiskers per point
    labels = [t.get_text() for t in ax_saved.get_legend().get_texts()]
    assert "time vs args-faithful" in labels and "space vs args-optimized" in labels
    assert {86.5, 98.5} <= _hlines_at(ax_saved)


def test_report_accepts_a_sweep_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = [make_results(seed=i, batch_size=b) for i, b in enumerate((1, 4))]
    sweep = tmp_path / "sweeps" / "s1"
    points = [
        {
            "index": i,
            "values": {"batch_size": run["config"]["batch_size"]},
            "status": "complete",
            "run_dir": str(write_run(sweep / "safety", run).relative_to(sweep)),
        }
        for i, run in enumerate(runs)
    ]
    points.append({"index": 2, "values": {"batch_size": 8}, "status": "failed", "run_dir": None})
    (sweep / "index.json").write_text(json.dumps({"points": points}))
    monkeypatch.setattr(otterbench.results.report, "write_run_report", lambda run, out, quality=None: [])
    outcome = runner.invoke(app, ["report", str(sweep)])
    assert outcome.exit_code == 0, outcome.output
    assert (sweep / "report" / "cost_growth.png").exists()
    assert "The runs vary `batch_size`." in (sweep / "report" / "report.md").read_text()
