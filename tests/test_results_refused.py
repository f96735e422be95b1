"""Values no run can produce are refused by every reader: one `error:` line, exit 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from factories import make_results, write_run
from typer.testing import CliRunner

from otterbench.cli import app

runner = CliRunner()


def _damage(arms: list[dict], where: str, value: float) -> str:
    """Put `value` at `where` of the second arm; return the JSON path the error must name."""
    arm = arms[1]
    if where == "tpot sample":
        arm["latency"]["tpot_s"]["samples"][3] = value
        return "$.arms[1].latency.tpot_s.samples[3]"
    if where == "total median":
        arm["latency"]["total_s"]["median"] = value
        return "$.arms[1].latency.total_s.median"
    arm["memory"]["peak_bytes"] = value
    return "$.arms[1].memory.peak_bytes"


CASES = [
    ("tpot sample", float("nan")),
    ("tpot sample", -0.002),
    ("total median", float("inf")),
    ("total median", -1.0),
    ("peak bytes", -4096.0),
    ("peak bytes", float("-inf")),
]


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("good"), make_results(repeats=6), "good")


@pytest.mark.parametrize(("where", "value"), CASES)
@pytest.mark.parametrize("reader", ["report", "check", "compare", "export"])
def test_every_reader_refuses_nan_infinity_and_negatives(
    tmp_path: Path, good: Path, reader: str, where: str, value: float
) -> None:
    results = make_results(repeats=6)
    path_named = _damage(results["arms"], where, value)
    run_dir = tmp_path / "bad"
    run_dir.mkdir()
    # Python's json writes NaN/Infinity literals, as a hand-edited or foreign file would carry them
    (run_dir / "results.json").write_text(json.dumps(results))
    out = tmp_path / "out"
    args = {
        "report": ["report", str(run_dir), "--out", str(out)],
        "check": ["check", str(run_dir), "--baseline", str(good)],
        "compare": ["compare", str(good), str(run_dir)],
        "export": ["export", str(run_dir), "--format", "github", "--out", str(out / "bench.json")],
    }[reader]
    outcome = runner.invoke(app, args)
    assert outcome.exit_code == 2, outcome.output
    lines = [line for line in outcome.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and path_named in lines[0], lines
    assert not out.exists()


def test_export_to_stdout_is_strict_json(good: Path) -> None:
    outcome = runner.invoke(app, ["export", str(good), "--format", "github"])
    assert outcome.exit_code == 0
    entries = json.loads(outcome.output, parse_constant=lambda name: pytest.fail(f"{name} in the export"))
    assert entries and all(isinstance(entry["value"], float) for entry in entries)


def test_export_of_a_run_where_no_arm_finished_is_refused(tmp_path: Path) -> None:
    results = make_results(repeats=6)
    for arm in results["arms"]:
        arm.update(status="failed", error="killed before its first repeat")
    results.update(savings=[], status="interrupted")
    run_dir = write_run(tmp_path, results, "stopped")
    outcome = runner.invoke(app, ["export", str(run_dir), "--format", "github"])
    assert outcome.exit_code == 2, outcome.output
    assert outcome.output.startswith("error:") and "no arm finished" in outcome.output
