"""otterbench sweep: a grid of complete runs indexed in index.json, resumed without re-running finished points."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from otterbench.cli import app
from otterbench.exits import Exit
from otterbench.results.files import load_run
from otterbench.run import pipeline as runner
from otterbench.run.options import RunOptions
from otterbench.run.sweep import SweepInputError, expand_grid, parse_vary, run_sweep

TINY = ["--arms", "base,otter-args", "--device", "cpu", "--isolation", "inline", "--num-prompts", "2"]
TINY += ["--max-new-tokens", "2", "--repeats", "1", "--warmup", "0"]
BASE = RunOptions(
    arms="base,otter-args",
    device="cpu",
    isolation="inline",
    num_prompts=2,
    max_new_tokens=2,
    repeats=1,
    warmup=0,
)


def _run_dirs(root: Path) -> list[Path]:
    return sorted(path.parent for path in root.rglob("results.json"))


def _forbid_runs(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a complete point was run again")

    monkeypatch.setattr(runner, "run_suite", refuse)


def test_grid_is_the_cartesian_product_with_typed_values() -> None:
    grid = parse_vary(["batch_size=1,4", "weight=0.5,2"])
    assert grid == {"batch_size": [1, 4], "weight": [0.5, 2.0]}
    assert all(type(v) is int for v in grid["batch_size"]) and all(type(v) is float for v in grid["weight"])
    assert expand_grid(grid) == [
        {"batch_size": 1, "weight": 0.5},
        {"batch_size": 1, "weight": 2.0},
        {"batch_size": 4, "weight": 0.5},
        {"batch_size": 4, "weight": 2.0},
    ]


def test_cli_sweep_writes_index_and_complete_runs_then_resumes_without_running(tmp_path, monkeypatch) -> None:
    args = ["sweep", "--suite", "safety", "--vary", "batch_size=1,2", "--out", str(tmp_path), *TINY]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    (sweep_dir,) = (tmp_path / "safety" / "sweeps").iterdir()  # one sweep, id derived from the options
    index = json.loads((sweep_dir / "index.json").read_text())
    assert index["status"] == "complete" and index["grid"] == {"batch_size": [1, 2]}
    assert [p["values"] for p in index["points"]] == [{"batch_size": 1}, {"batch_size": 2}]
    runs = _run_dirs(tmp_path)
    assert len(runs) == 2 and all(run.is_relative_to(sweep_dir) for run in runs)
    for point in index["points"]:
        results = load_run(sweep_dir / point["run_dir"])
        assert point["status"] == results["status"] == "complete"
        assert results["config"]["batch_size"] == point["values"]["batch_size"]
        assert results["config"]["num_prompts"] == 2 and results["config"]["max_new_tokens"] == 2
    assert f"otterbench report {sweep_dir} --out" in first.output  # the sweep folder stands for its points

    _forbid_runs(monkeypatch)  # the same command again: both points are complete, nothing may run
    second = CliRunner().invoke(app, [*args, "--report"])
    assert second.exit_code == 0, second.output
    assert "ran 0 point(s); 2 already complete" in second.output
    assert _run_dirs(tmp_path) == runs
    assert (sweep_dir / "report" / "report.md").is_file() and (
        sweep_dir / "report" / "cost_growth.png"
    ).is_file()
    assert json.loads((sweep_dir / "index.json").read_text())["points"] == index["points"]


def test_interrupted_sweep_resumes_only_the_unfinished_point(tmp_path, monkeypatch) -> None:
    real_run_suite = runner.run_suite
    calls: list[int] = []

    def interrupt_second(config, on_event=None):
        calls.append(config.suite.max_new_tokens)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_run_suite(config, on_event)

    monkeypatch.setattr(runner, "run_suite", interrupt_second)
    grid = {"max_new_tokens": [2, 3]}
    base = BASE.with_values({"max_new_tokens": None})
    sweep_dir = tmp_path / "sweep"
    outcome = run_sweep(base, grid, sweep_dir)
    index = json.loads((sweep_dir / "index.json").read_text())
    assert outcome.exit_code == Exit.INTERRUPTED and index["status"] == "interrupted"
    assert [p["status"] for p in index["points"]] == ["complete", "interrupted"]
    first_run = _run_dirs(sweep_dir)
    assert len(first_run) == 1

    calls.clear()

    def count(config, on_event=None):
        calls.append(config.suite.max_new_tokens)
        return real_run_suite(config, on_event)

    monkeypatch.setattr(runner, "run_suite", count)
    resumed = run_sweep(base, grid, sweep_dir)
    assert resumed.exit_code == 0 and resumed.ran == [1] and calls == [3]
    assert [p.status for p in resumed.points] == ["complete", "complete"]
    assert resumed.points[0].run_dir == outcome.points[0].run_dir  # the finished point was kept, not redone
    assert len(_run_dirs(sweep_dir)) == 2 and set(first_run) <= set(_run_dirs(sweep_dir))


def test_partial_run_is_run_again(tmp_path, monkeypatch) -> None:
    sweep_dir = tmp_path / "sweep"
    outcome = run_sweep(BASE, {"batch_size": [1]}, sweep_dir)
    results_file = sweep_dir / outcome.points[0].run_dir / "results.json"
    results = json.loads(results_file.read_text())
    results["status"] = "partial"  # as if the process had been killed between two arms
    results_file.write_text(json.dumps(results))
    real_run_suite, calls = runner.run_suite, []
    monkeypatch.setattr(runner, "run_suite", lambda *a, **kw: calls.append(1) or real_run_suite(*a, **kw))
    resumed = run_sweep(BASE, {"batch_size": [1]}, sweep_dir)
    assert calls == [1] and resumed.exit_code == 0 and resumed.points[0].status == "complete"
    assert resumed.points[0].attempts == [outcome.points[0].run_dir, resumed.points[0].run_dir]


@pytest.mark.parametrize(
    ("vary", "extra", "message"),
    [
        (["speed=1,2"], [], "--vary 'speed=1,2': write FIELD=V1,V2,... with FIELD one of batch_size,"),
        (["batch_size=1,x"], [], "'x' is not an integer"),
        (["k=5", "k=10"], [], "--vary k is given twice"),
        (["batch_size=1,1"], [], "repeats a value"),
        (["batch_size=1,4"], ["--batch-size", "8"], "--batch-size is also varied"),
        (["k=0,5"], [], "k = 0 is too small"),
        ([], [], "--vary is missing"),
    ],
)
def test_bad_vary_input_is_one_line_and_exit_2(tmp_path, monkeypatch, vary, extra, message) -> None:
    _forbid_runs(monkeypatch)
    args = ["sweep", "--out", str(tmp_path), *TINY, *extra]
    for item in vary:
        args += ["--vary", item]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.output


def test_library_refuses_a_sweep_id_holding_other_options(tmp_path, monkeypatch) -> None:
    sweep_dir = tmp_path / "sweep"
    (sweep_dir).mkdir()
    (sweep_dir / "index.json").write_text(
        json.dumps({"suite": "safety", "base": {"device": "cuda"}, "points": []})
    )
    _forbid_runs(monkeypatch)
    with pytest.raises(SweepInputError, match="holds a sweep of other base options"):
        run_sweep(BASE, {"batch_size": [1]}, sweep_dir)


def test_two_sweeps_into_one_folder_keep_every_point(tmp_path) -> None:
    """A second sweep finishes while the first is mid-point; the first's last write must not drop it."""
    sweep_dir = tmp_path / "sweep"

    def run_then_let_another_sweep_finish(config, point, on_event):
        outcome = runner.run_suite(config, on_event)
        run_sweep(BASE, {"batch_size": [2]}, sweep_dir)
        return outcome

    first = run_sweep(BASE, {"batch_size": [1]}, sweep_dir, run_then_let_another_sweep_finish)
    index = json.loads((sweep_dir / "index.json").read_text())
    assert first.exit_code == 0
    assert sorted(p["values"]["batch_size"] for p in index["points"]) == [1, 2]
    assert {p["status"] for p in index["points"]} == {"complete"}


def test_run_and_sweep_accept_the_same_knobs() -> None:
    import typer.main

    def options(name: str) -> set[str]:
        command = typer.main.get_command(app).commands[name]
        return {opt for param in command.params for opt in param.opts}

    assert options("run") - {"--json"} == options("sweep") - {"--vary", "--sweep-id", "--report"}
    assert {"--dtype", "--schedule", "--cpu-threads", "--base", "--prompts"} <= options("sweep")
