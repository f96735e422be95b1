"""Every way a run can be configured writes a results file that every reader of the project accepts."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from otterbench.cli import app
from otterbench.results.files import load_run
from otterbench.run import arm_models, schedules
from otterbench.run import pipeline as runner
from otterbench.run import session as measure
from otterbench.run.interrupts import Interrupted
from otterbench.run.options import RunOptions
from otterbench.run.suite import suites_dir

SMALL = {"arms": "base,args-faithful,otter-args", "device": "cpu", "isolation": "inline"}
SMALL |= {"max_new_tokens": 2, "repeats": 1, "warmup": 0, "batch_size": 2}
PROMPTS = [{"prompt": "The river was"}, {"prompt": "Tell me about"}, {"prompt": "A quiet morning"}]


def _suite_without_num_prompts(tmp_path: Path) -> Path:
    """The bundled safety suite with its num_prompts line removed and a 3-prompt file."""
    text = (suites_dir() / "safety.toml").read_text()
    lines = [line for line in text.splitlines() if not line.startswith(("num_prompts", "prompts"))]
    prompts = tmp_path / "three.jsonl"
    prompts.write_text("\n".join(json.dumps(p) for p in PROMPTS) + "\n")
    suite = tmp_path / "nonum.toml"
    suite.write_text(f'prompts = "{prompts}"\n' + "\n".join(lines) + "\n")
    return suite


def _fail_otter(monkeypatch) -> None:
    real_build = arm_models.build_arm

    def build(name, models, otter=None, **options):
        if name == "otter-args":
            raise RuntimeError("deliberate failure")
        return real_build(name, models, otter, **options)

    monkeypatch.setattr(arm_models, "build_arm", build)


def _interrupt_second_arm(monkeypatch) -> None:
    real_measure = measure.measure_arm

    def measure_or_stop(job, *callbacks):
        if job.arm == "args-faithful":
            raise Interrupted(signal.SIGINT)
        return real_measure(job, *callbacks)

    monkeypatch.setattr(schedules, "measure_arm", measure_or_stop)


@pytest.mark.parametrize(
    "path", ["suite-defaults", "prompts-file", "num-prompts", "failed-arm", "interrupted"]
)
def test_every_configuration_writes_results_every_reader_accepts(tmp_path, monkeypatch, path) -> None:
    options = RunOptions(**SMALL, out=tmp_path / "out")
    if path == "suite-defaults":
        options = options.with_values({"suite": str(_suite_without_num_prompts(tmp_path))})
    elif path == "prompts-file":
        prompts = tmp_path / "mine.jsonl"
        prompts.write_text("\n".join(json.dumps(p) for p in PROMPTS[:2]) + "\n")
        options = options.with_values({"prompts": prompts})
    else:
        options = options.with_values({"num_prompts": 2})
    if path == "failed-arm":
        _fail_otter(monkeypatch)
    if path == "interrupted":
        _interrupt_second_arm(monkeypatch)
    outcome = runner.run_suite(options.to_config(tmp_path))
    results = load_run(outcome.run_dir)  # the schema check every reader starts with
    expected = {"suite-defaults": 3, "prompts-file": 2}.get(path, 2)
    assert results["config"]["num_prompts"] == results["workload"]["num_prompts"] == expected
    # a failed arm leaves a partial run: "complete" only when every arm measured
    status = {"interrupted": "interrupted", "failed-arm": "partial"}.get(path, "complete")
    assert results["status"] == status
    run = str(outcome.run_dir)
    cli = CliRunner()
    for args in (
        ["report", run, "--out", str(tmp_path / "report")],
        ["compare", run, run],
        ["export", run, "--format", "github"],
        ["check", run, "--baseline", run],
    ):
        result = cli.invoke(app, args)
        # one repeat cannot feed the gate: check answers INCONCLUSIVE (3), every other reader exit 0
        expected_exit = 3 if args[0] == "check" else 0
        assert result.exit_code == expected_exit and "error:" not in result.output, (args, result.output)
