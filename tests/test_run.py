"""otterbench run: matched arms, valid results files, failures and interruptions kept, bad input refused."""

from __future__ import annotations

import io
import json
import signal
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from otterbench.backends import backend_spec
from otterbench.cli import app
from otterbench.commands.run import ProgressView, progress_bars
from otterbench.exits import Exit
from otterbench.results.decisions import DecisionPair, decision_pairs
from otterbench.results.files import load_run
from otterbench.run import arm_models, schedules
from otterbench.run import pipeline as runner
from otterbench.run import session as measure
from otterbench.run.config import resolve_run_config
from otterbench.run.events import ArmPhase, ArmProgress, ArmStarted, RunPhase, RunStarted
from otterbench.run.interrupts import Interrupted

ARMS = ("base", "otter-args")
SMALL = {"num_prompts": 4, "max_new_tokens": 3, "batch_size": 2, "repeats": 2, "warmup": 0, "k": 4}


def small_config(tmp_path: Path, **run_fields):
    return resolve_run_config("safety", out_dir=tmp_path, suite_overrides=SMALL, **run_fields)


@pytest.fixture(scope="module")
def inline_run(tmp_path_factory):
    config = small_config(tmp_path_factory.mktemp("run"), isolation="inline", device="cpu")
    return runner.run_suite(config)


def test_inline_run_writes_valid_matched_results(inline_run) -> None:
    results = load_run(inline_run.run_dir)  # validates against the JSON schema
    assert inline_run.exit_code == 0 and results["status"] == "complete"
    names = ["base", "args-faithful", "args-optimized", "args-token", "otter-args"]
    assert [a["name"] for a in results["arms"]] == names
    assert all(a["status"] == "ok" and a["new_tokens"] == 3 for a in results["arms"])
    hashes = {a["name"]: a["token_ids_hash"] for a in results["arms"]}
    assert hashes["args-faithful"] == hashes["args-optimized"]
    assert decision_pairs(results) == [DecisionPair("args-optimized", "args-faithful", True)]
    assert {s["separate_arm"] for s in results["savings"]} == {
        "args-faithful",
        "args-optimized",
        "args-token",
    }
    default = backend_spec("eager").layouts[0]  # the engine's preferred layout, packed
    assert results["otter"]["layout"] == default and results["otter"]["distilled"] is False
    assert results["config"]["layout"] == default
    nd = results["non_disruption"]
    assert nd["layout"] == default and nd["scope"] == "whole workload"
    assert nd["greedy_tokens_identical"] is True and nd["base_arm_token_ids_hash"] == hashes["base"]
    # prompts 4 x (N-1)=2 cached steps: every decode step of the workload was compared
    assert nd["checks"]["cached_decode_logits"]["positions"] == 4 * 2
    peak = results["environment"]["memory_bandwidth"]["peak_bytes_per_s"]
    for arm in results["arms"]:  # the planner's bytes per step over the measured TPOT p50, against the peak
        eff = arm["efficiency"]
        assert eff["bytes_per_step"] > 0 and eff["flops_per_step"] > 0
        assert eff["mbu"] == eff["bytes_per_step"] / arm["latency"]["tpot_s"]["median"] / peak
    for saving in results["savings"]:
        assert saving["predicted"]["time_bytes_pct"] is not None
        assert "extra_decode_time_saved_ci95" in saving
    for arm in results["arms"]:
        latency = arm["latency"]
        assert latency["total_s"]["n"] == 2 and latency["ttft_s"]["n"] == 2 * 2  # 2 batches x 2 repeats
        assert latency["tpot_s"]["n"] == 2 * 2 * 2  # (N-1) steps per batch
        assert set(arm["memory"]["by_phase"]) == {"runtime", "load", "prefill", "decode"}
    csv = (inline_run.run_dir / "arms.csv").read_text().splitlines()
    assert len(csv) == 1 + 5


def test_failing_arm_is_recorded_and_others_kept(tmp_path, monkeypatch) -> None:
    real_build = arm_models.build_arm

    def build(name, models, otter=None, **options):
        if name == "args-optimized":
            raise RuntimeError("deliberate failure for the test")
        return real_build(name, models, otter, **options)

    monkeypatch.setattr(arm_models, "build_arm", build)
    outcome = runner.run_suite(small_config(tmp_path, isolation="inline", device="cpu"))
    results = load_run(outcome.run_dir)
    statuses = {a["name"]: (a["status"], a["error"]) for a in results["arms"]}
    assert outcome.exit_code == 1
    assert statuses["args-optimized"] == ("failed", "RuntimeError: deliberate failure for the test")
    assert all(status == "ok" for name, (status, _) in statuses.items() if name != "args-optimized")
    saving = {s["separate_arm"]: s for s in results["savings"]}["args-optimized"]
    assert saving["extra_time_saved_pct"] is None and saving["notes"]


def test_interrupted_run_leaves_valid_files(tmp_path, monkeypatch) -> None:
    real_measure = measure.measure_arm

    def measure_then_interrupt(job, *callbacks):
        if job.arm == "args-optimized":
            raise Interrupted(signal.SIGINT)
        return real_measure(job, *callbacks)

    monkeypatch.setattr(schedules, "measure_arm", measure_then_interrupt)
    outcome = runner.run_suite(small_config(tmp_path, isolation="inline", device="cpu"))
    results = load_run(outcome.run_dir)
    assert outcome.exit_code == Exit.INTERRUPTED and results["status"] == "interrupted"
    assert [a["status"] for a in results["arms"]] == ["ok", "ok", "not_run", "not_run", "not_run"]
    assert not list(outcome.run_dir.glob("*.tmp*"))


def test_split_layout_run_is_exact_over_the_whole_workload(tmp_path) -> None:
    config = small_config(
        tmp_path, isolation="inline", device="cpu", layout="split", arms=["base", "otter-args"]
    )
    results = load_run(runner.run_suite(config).run_dir)
    assert [a["status"] for a in results["arms"]] == ["ok", "ok"]
    nd = results["non_disruption"]
    # exact (torch.equal) is the split layout's guarantee: both models run eager, originals called unchanged
    assert results["otter"]["layout"] == nd["layout"] == "split"
    assert nd["exact"] is True and nd["greedy_tokens_identical"] is True
    assert all(check["exact"] for check in nd["checks"].values())  # prompts, cached decode, full forward


def test_packed_layout_run_records_its_layout_and_stores_no_zero_block(tmp_path) -> None:
    config = small_config(
        tmp_path, isolation="inline", device="cpu", layout="packed", arms=["base", "otter-args"]
    )
    results = load_run(runner.run_suite(config).run_dir)  # validated by the schema
    assert [a["status"] for a in results["arms"]] == ["ok", "ok"]
    assert results["otter"]["layout"] == results["non_disruption"]["layout"] == "packed"
    assert results["non_disruption"]["greedy_tokens_identical"] is True
    otter = next(a for a in results["arms"] if a["name"] == "otter-args")
    base = next(a for a in results["arms"] if a["name"] == "base")
    extra = otter["memory"]["weights_bytes"] - base["memory"]["weights_bytes"]
    assert extra == results["otter"]["inserted_parameters"] * 4  # float32: the inserted bytes, nothing more


# sequential, the GPU default; spawned interleaved runs (the CPU default) are measured by
# test_interleaved_arm_that_cannot_load_fails_alone, test_plan_vs_measured.py and test_faults.py
@pytest.mark.parametrize("schedule", ["sequential"])
def test_cli_run_in_spawned_processes(tmp_path, schedule: str, monkeypatch, capfd) -> None:
    seen: list = []
    draw = ProgressView.__call__
    monkeypatch.setattr(ProgressView, "__call__", lambda view, event: draw(view, seen.append(event) or event))
    args = [
        "run",
        "--suite",
        "safety",
        "--arms",
        "base,otter-args",
        "--out",
        str(tmp_path),
        "--device",
        "cpu",
        "--num-prompts",
        "2",
        "--max-new-tokens",
        "2",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--schedule",
        schedule,
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)
    assert results["isolation"] == "process" and results["config"]["schedule"] == schedule
    assert [a["status"] for a in results["arms"]] == ["ok", "ok"]
    # the spawned Otter process held the fused checkpoint alone: one causal LM (and its inner model)
    otter_models = results["arms"][1]["memory"]["models_in_memory"]
    assert sorted(m["class"] for m in otter_models) == ["LlamaForCausalLM", "LlamaModel"]
    run_dir = next((tmp_path / "safety").iterdir())
    assert load_run(run_dir)["run_id"] == results["run_id"]
    # what the parent and each arm's process said they were doing before and between the counted steps
    assert [e.phase for e in seen if isinstance(e, RunPhase)] == [
        "checking the input",
        f"preparing the {backend_spec('eager').layouts[0]} checkpoint",
        "measuring memory bandwidth and compute peak",
    ]
    phases = {arm: [e.phase for e in seen if isinstance(e, ArmPhase) and e.arm == arm] for arm in ARMS}
    assert phases == {
        "base": ["loading models", "prefill"],
        "otter-args": ["loading models", "prefill", "checking non-disruption"],
    }
    # no third-party progress bar, from the parent (it built the fused checkpoint) or an arm's process
    printed = result.stderr + capfd.readouterr().err
    assert not [bar for bar in ("Loading weights", "Writing model shards", "it/s]") if bar in printed], (
        printed
    )


def test_the_progress_view_says_what_the_run_and_each_arm_are_doing(tmp_path) -> None:
    console = Console(file=io.StringIO())
    with progress_bars(console) as progress:
        view = ProgressView(progress, console, header=False)

        def lines() -> list[str]:
            return [" ".join(task.description.split()) for task in progress.tasks if task.visible]

        view(RunPhase("preparing the fused checkpoint"))
        assert lines() == ["run preparing the fused checkpoint"]
        view(RunPhase("measuring memory bandwidth"))
        assert lines() == ["run measuring memory bandwidth"]
        view(RunStarted(tmp_path, None))
        assert lines() == []
        view(ArmStarted("base", 3))
        assert lines() == ["base starting"]
        for phase in ("loading models", "compiling", "prefill"):
            view(ArmPhase("base", phase))
            assert lines() == [f"base {phase}"]
        view(ArmProgress("base", 1, 3))
        assert lines() == ["base running"] and progress.tasks[-1].completed == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--suite", "nope"], "unknown suite 'nope': known suites are"),
        (["--device", "cuda:7"], "cuda"),
        (["--dtype", "float64"], "dtype"),
        (["--repeats", "0"], "repeats"),
        (["--arms", "base,frobnicate"], "frobnicate"),
        (["--profile", "huge"], "--profile='huge' is unknown"),
        (
            ["--reward-model", "/nonexistent/rm"],
            "reward_model model '/nonexistent/rm' is not available offline",
        ),
        (["--k", "0"], "k"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["run", "--out", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.output


def test_unwritable_out_and_malformed_suite_file(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(app, ["run", "--out", str(blocker / "sub")])
    assert result.exit_code == 2 and "--out" in result.output
    suite = tmp_path / "broken.toml"
    suite.write_text(
        'description = "x"\ntask = "args"\narms = ["base"]\nprompts = "p.jsonl"\nmax_new_tokens = "many"\n'
        'batch_size = 1\nseed = 0\n[profiles.tiny]\nbase = "tiny"\n'
    )
    result = CliRunner().invoke(app, ["run", "--suite", str(suite), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "max_new_tokens" in result.output


def test_interleaved_arm_that_cannot_load_fails_alone(tmp_path) -> None:
    """A reward model whose config exists but whose weights do not: its arm fails, the other finishes."""
    from otterbench.models.tiny import build_tiny_model

    build_tiny_model("reward_model").config.save_pretrained(tmp_path / "rm-without-weights")
    args = [
        "run",
        "--suite",
        "safety",
        "--reward-model",
        str(tmp_path / "rm-without-weights"),
        "--arms",
        "base,args-faithful",  # one arm that cannot load beside one that can: each is its own process
        "--out",
        str(tmp_path / "out"),
        "--device",
        "cpu",
        "--schedule",
        "interleaved",
        "--num-prompts",
        "2",
        "--max-new-tokens",
        "2",
        "--repeats",
        "2",
        "--warmup",
        "0",
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    results = json.loads(result.stdout)
    assert results["config"]["schedule"] == "interleaved"
    statuses = {a["name"]: a["status"] for a in results["arms"]}
    assert statuses == {"base": "ok", "args-faithful": "failed"}
    assert "weights are not" in next(a for a in results["arms"] if a["name"] == "args-faithful")["error"]
    assert all(a["latency"]["total_s"]["n"] == 2 for a in results["arms"] if a["status"] == "ok")
