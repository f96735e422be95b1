"""Inputs `run`, `distill` and `plan` would otherwise misuse in silence are refused before anything loads:
an insertion distilled for another task or trained on another base's weights, zero training steps, a task
knob or model role none of the run's arms reads, a schedule the isolation cannot honour; and independent
problems come out together, one `error:` line each (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from no_loading import SMALL, LoadedAModel, forbid_loading
from transformers import GPT2Config, GPT2LMHeadModel
from typer.testing import CliRunner

from otterbench.cli import app
from otterbench.exits import Exit
from otterbench.models.fingerprint import weights_fingerprint
from otterbench.models.tiny import build_tiny_model
from otterbench.otter import OtterSpec, insert_otter, save_otter
from otterbench.otter.io import CONFIG_FILE, saved_otter_problems
from otterbench.run.config import RunInputError, resolve_run_config
from otterbench.run.preflight import run_problems


@pytest.fixture(autouse=True)
def no_loading(monkeypatch):
    """Any model load or arm process fails the test."""
    forbid_loading(monkeypatch)


def _errors(args: list[str]) -> list[str]:
    """Run the CLI; assert exit 2, nothing loaded, and every line of output (no blank one) an `error:` line."""
    result = CliRunner().invoke(app, args)
    assert not isinstance(result.exception, LoadedAModel), result.output
    assert result.exit_code == Exit.BAD_INPUT, result.output
    lines = result.output.splitlines()
    assert lines and all(line.startswith("error: ") for line in lines), repr(result.output)
    return lines


def _insertion(base, directory: Path, metadata=None, base_weights=None) -> Path:
    otter = insert_otter(base, OtterSpec.from_ratio(base.config, init="zeros"))
    return save_otter(otter, directory, metadata=metadata, base_weights=base_weights)


@pytest.fixture(scope="module")
def tiny_base():
    return build_tiny_model("base")


# --- an insertion distilled for another task ---------------------------------------------------------


def test_insertion_distilled_for_another_task_is_refused(tiny_base, tmp_path) -> None:
    metadata = {"distilled": True, "distill": {"task": "args", "steps": 3}}
    folder = _insertion(tiny_base, tmp_path / "otter", metadata)
    args = ["run", "--suite", "detox", "--arms", "base,otter-dexperts", "--otter", str(folder)]
    lines = _errors([*args, "--out", str(tmp_path / "out"), *SMALL])
    assert len(lines) == 1, lines
    assert "distilled for task args" in lines[0] and "answer task dexperts" in lines[0], lines
    # the same folder under the task it was distilled for is accepted
    config = resolve_run_config("safety", out_dir=tmp_path, otter=str(folder), device="cpu")
    assert run_problems(config) == []


def test_undistilled_insertion_is_task_free(tiny_base, tmp_path) -> None:
    folder = _insertion(tiny_base, tmp_path / "otter")
    for suite in ("safety", "detox"):
        config = resolve_run_config(suite, out_dir=tmp_path, otter=str(folder), device="cpu")
        assert run_problems(config) == [], suite


# --- an insertion trained on another base of the same shape -------------------------------------------


def test_weights_fingerprint_reads_the_weights_not_the_sharding(tiny_base, tmp_path) -> None:
    tiny_base.save_pretrained(tmp_path / "one")
    tiny_base.save_pretrained(tmp_path / "shards", max_shard_size="200KB")
    assert len(list((tmp_path / "shards").glob("*.safetensors"))) > 1
    assert weights_fingerprint(str(tmp_path / "one")) == weights_fingerprint(str(tmp_path / "shards"))
    tuned = build_tiny_model("base")
    with torch.no_grad():
        tuned.model.layers[0].mlp.down_proj.weight[0, 0] += 1e-3  # one value of one projection
    tuned.save_pretrained(tmp_path / "tuned")
    assert weights_fingerprint(str(tmp_path / "tuned")) != weights_fingerprint(str(tmp_path / "one"))
    assert weights_fingerprint(str(tmp_path / "nothing")) is None  # no files: nothing to judge


def test_insertion_of_another_base_with_the_same_shape_is_refused(tiny_base, tmp_path) -> None:
    tiny_base.save_pretrained(tmp_path / "base")
    other = build_tiny_model("base", seed=1)  # same config, other weights
    other.save_pretrained(tmp_path / "other")
    trained_on = weights_fingerprint(str(tmp_path / "base"))
    folder = _insertion(tiny_base, tmp_path / "otter", base_weights=trained_on)
    assert json.loads((folder / CONFIG_FILE).read_text())["base"]["weights"] == trained_on
    arch, config = type(tiny_base).__name__, tiny_base.config
    assert saved_otter_problems(folder, arch, config, weights_fingerprint(str(tmp_path / "base"))) == []
    (line,) = saved_otter_problems(folder, arch, config, weights_fingerprint(str(tmp_path / "other")))
    assert "was saved for another base (weights: saved" in line, line
    # through a run's preflight too (its other lines are the folder's missing tokenizer)
    run = resolve_run_config(
        "safety", out_dir=tmp_path, otter=str(folder), overrides={"base": str(tmp_path / "other")}
    )
    assert any("weights: saved" in problem for problem in run_problems(run))
    # an insertion saved without its base's weights hash (older folders, tests) is judged on its shape
    unhashed = _insertion(tiny_base, tmp_path / "unhashed")
    assert saved_otter_problems(unhashed, arch, config, weights_fingerprint(str(tmp_path / "other"))) == []


# --- distill --steps ---------------------------------------------------------------------------------


@pytest.mark.parametrize("steps", ["0", "-3"])
def test_distill_refuses_zero_steps_before_loading(tmp_path, steps) -> None:
    (line,) = _errors(["distill", "--suite", "safety", "--steps", steps, "--out", str(tmp_path / "d")])
    assert f"--steps={steps}" in line and ">= 1" in line, line
    assert not (tmp_path / "d").exists()


# --- options no arm of the run reads -----------------------------------------------------------------

UNUSED = {
    "alpha-on-safety": (
        ["--suite", "safety", "--alpha", "0.5"],
        "--alpha=0.5 is read by the arm(s) dexperts",
    ),
    "draft-length-on-safety": (["--suite", "safety", "--draft-length", "4"], "--draft-length=4 is read by"),
    "draft-on-safety": (["--suite", "safety", "--draft", "{tmp}"], "--draft is loaded by the arm(s) spec"),
    "reward-model-on-detox": (["--suite", "detox", "--reward-model", "{tmp}"], "--reward-model is loaded"),
    "k-on-base-alone": (["--suite", "safety", "--arms", "base", "--k", "3"], "they read no task knob"),
}


@pytest.mark.parametrize("case", list(UNUSED))
def test_an_option_no_arm_reads_is_refused(case, tmp_path) -> None:
    args, fragment = UNUSED[case]
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    (line,) = _errors(["run", *args, "--out", str(tmp_path / "out"), *SMALL])
    assert fragment in line and "none of which this run runs" in line, line


def test_an_option_an_arm_reads_is_accepted(tmp_path) -> None:
    config = resolve_run_config("detox", out_dir=tmp_path, suite_overrides={"alpha": 0.5}, device="cpu")
    assert config.suite.knobs["alpha"] == 0.5


def test_plan_refuses_a_model_its_task_does_not_load() -> None:
    (line,) = _errors(["plan", "--base", "llama-2-7b", "--task", "dexperts", "--reward-model", "x"])
    assert "--reward-model" in line and "task dexperts" in line and "--expert" in line, line


# --- a schedule that cannot be honoured --------------------------------------------------------------


def test_interleaved_schedule_with_inline_isolation_is_refused(tmp_path) -> None:
    args = ["run", "--schedule", "interleaved", "--isolation", "inline", "--out", str(tmp_path), *SMALL]
    (line,) = _errors(args)
    assert "--schedule='interleaved' cannot be honoured with --isolation inline" in line, line
    # without --schedule, inline isolation still chooses its schedule
    resolve_run_config("safety", out_dir=tmp_path, isolation="inline")
    with pytest.raises(RunInputError):
        resolve_run_config("safety", out_dir=tmp_path, isolation="inline", schedule="interleaved")


# --- every independent problem at once ---------------------------------------------------------------


def test_unknown_layout_and_engine_are_both_reported(tmp_path) -> None:
    lines = _errors(["run", "--layout", "diagonal", "--engine", "turbo", "--out", str(tmp_path), *SMALL])
    assert len(lines) == 2 and "--layout='diagonal'" in lines[0] and "--engine='turbo'" in lines[1], lines


def test_uncached_hub_base_is_reported_with_a_bad_reward_model(tmp_path) -> None:
    args = ["run", "--base", "nosuchorg/nosuchmodel", "--reward-model", str(tmp_path), "--out", str(tmp_path)]
    lines = _errors([*args, *SMALL])
    assert any("base model 'nosuchorg/nosuchmodel' is not available offline" in line for line in lines)
    assert any(f"reward_model model '{tmp_path}' is not a model directory" in line for line in lines)


def test_a_preflight_error_has_no_blank_line_before_it(tmp_path) -> None:
    gpt2 = tmp_path / "gpt2"
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=4096)).save_pretrained(gpt2)
    (line,) = _errors(["run", "--base", str(gpt2), "--out", str(tmp_path / "out"), *SMALL])
    assert "is a 'gpt2' model" in line
