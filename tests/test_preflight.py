"""preflight: bad models, Otter folders, lengths and numbers refused in the parent, one line each, exit 2.

Every test patches the model loaders and the arm-process spawner to fail if called: a refusal must come
before any weight loads or any process starts.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from no_loading import SMALL, LoadedAModel, forbid_loading
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForSequenceClassification,
)
from typer.testing import CliRunner

from otterbench.cli import app
from otterbench.exits import Exit
from otterbench.models.tiny import TINY_SIZES, build_tiny_model
from otterbench.otter import OtterSpec, insert_otter, save_otter
from otterbench.otter.io import CONFIG_FILE, WEIGHTS_FILE
from otterbench.run.config import resolve_run_config
from otterbench.run.preflight import PreflightError, preflight, run_problems


@pytest.fixture(autouse=True)
def no_loading(monkeypatch):
    """Any model load or arm process fails the test."""
    forbid_loading(monkeypatch)


def _save(model, directory: Path) -> str:
    model.save_pretrained(directory)
    return str(directory)


def _llama(vocab: int = TINY_SIZES["vocab_size"], **extra) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=vocab,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        **extra,
    )


def _refused(args: list[str], *expected: str) -> list[str]:
    """Run the CLI, assert exit 2 with each expected fragment on an `error:` line; return those lines."""
    result = CliRunner().invoke(app, args)
    assert not isinstance(result.exception, LoadedAModel), result.output
    assert result.exit_code == Exit.BAD_INPUT, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines and all(line.startswith("error: ") for line in lines), result.output
    for fragment in expected:
        assert any(fragment in line for line in lines), (fragment, result.output)
    return lines


def _run(tmp_path: Path, *extra: str) -> list[str]:
    return ["run", "--suite", "safety", "--out", str(tmp_path / "out"), *SMALL, *extra]


def test_gpt2_base_is_refused(tmp_path) -> None:
    config = GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=TINY_SIZES["vocab_size"])
    gpt2 = _save(GPT2LMHeadModel(config), tmp_path / "gpt2")
    lines = _refused(_run(tmp_path, "--base", gpt2), f"base '{gpt2}' is a 'gpt2' model", "--base")
    assert len(lines) == 1, lines
    assert not (tmp_path / "out").exists()


def test_reward_model_with_another_vocabulary_is_refused(tmp_path) -> None:
    reward = _save(LlamaForSequenceClassification(_llama(vocab=300, num_labels=1)), tmp_path / "rm")
    _refused(
        _run(tmp_path, "--reward-model", reward), f"reward_model '{reward}' has vocab 300, the base has 4096"
    )


def test_causal_lm_as_reward_model_is_refused(tmp_path) -> None:
    causal = _save(LlamaForCausalLM(_llama()), tmp_path / "lm")
    _refused(
        _run(tmp_path, "--reward-model", causal),
        f"reward_model '{causal}' is a LlamaForCausalLM",
        "pass another --reward-model",
    )


@pytest.fixture(scope="module")
def saved_otter(tmp_path_factory) -> Path:
    """A valid insertion for the tiny base (undistilled: its tensors are what counts here)."""
    base = build_tiny_model("base")
    directory = tmp_path_factory.mktemp("otter") / "otter"
    return save_otter(insert_otter(base, OtterSpec.from_ratio(base.config, init="zeros")), directory)


def _broken_copy(saved: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "otter"
    shutil.copytree(saved, copy)
    return copy


def test_valid_otter_folder_passes(saved_otter, tmp_path) -> None:
    config = resolve_run_config("safety", out_dir=tmp_path, otter=str(saved_otter), device="cpu")
    assert run_problems(config) == []


def test_truncated_otter_weights_are_refused(saved_otter, tmp_path) -> None:
    folder = _broken_copy(saved_otter, tmp_path)
    weights = folder / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    _refused(_run(tmp_path, "--otter", str(folder)), f"--otter {folder}: {WEIGHTS_FILE} is truncated")


def test_otter_spec_that_does_not_parse_is_refused(saved_otter, tmp_path) -> None:
    folder = _broken_copy(saved_otter, tmp_path)
    record = json.loads((folder / CONFIG_FILE).read_text())
    record["spec"]["extra_hidden_size"] = "wide"
    (folder / CONFIG_FILE).write_text(json.dumps(record))
    _refused(_run(tmp_path, "--otter", str(folder)), f"--otter {folder}: OtterSpec.extra_hidden_size='wide'")


def test_otter_of_another_base_is_refused(saved_otter, tmp_path) -> None:
    folder = _broken_copy(saved_otter, tmp_path)
    record = json.loads((folder / CONFIG_FILE).read_text())
    record["base"]["hidden_size"] = 256
    (folder / CONFIG_FILE).write_text(json.dumps(record))
    _refused(
        _run(tmp_path, "--otter", str(folder)),
        "was saved for another base (hidden_size: saved 256, given 128)",
    )


def test_otter_spec_of_another_base_is_refused(saved_otter, tmp_path) -> None:
    folder = _broken_copy(saved_otter, tmp_path)
    record = json.loads((folder / CONFIG_FILE).read_text())
    record["spec"]["extra_hidden_size"] *= 2  # the tensors no longer match what the spec makes of this base
    (folder / CONFIG_FILE).write_text(json.dumps(record))
    _refused(_run(tmp_path, "--otter", str(folder)), f"--otter {folder}: {WEIGHTS_FILE} holds")


def test_otter_folder_without_json_is_refused(saved_otter, tmp_path) -> None:
    folder = _broken_copy(saved_otter, tmp_path)
    (folder / CONFIG_FILE).unlink()
    _refused(_run(tmp_path, "--otter", str(folder)), f"{CONFIG_FILE} is missing")


def test_prompt_beyond_context_is_refused_with_the_figures(tmp_path) -> None:
    prompts = tmp_path / "long.jsonl"
    prompts.write_text(json.dumps({"prompt": "the quick brown fox " * 5000}) + "\n")  # 100k characters
    lines = _refused(
        ["run", "--suite", "safety", "--out", str(tmp_path / "out"), "--prompts", str(prompts)],
        "max_position_embeddings 2,048",
    )
    assert any("the longest prompt is" in line and "shorten the prompts" in line for line in lines)


def test_huge_max_new_tokens_is_refused_against_context_and_memory(tmp_path) -> None:
    _refused(
        ["run", "--suite", "safety", "--out", str(tmp_path / "out"), "--max-new-tokens", "1000000000"],
        "+ --max-new-tokens 1,000,000,000 = ",
        "the base's KV cache alone needs",
    )


@pytest.mark.parametrize(("option", "value"), [("--weight", "nan"), ("--alpha", "inf"), ("--weight", "-inf")])
def test_non_finite_numbers_are_refused_naming_the_option(tmp_path, option, value) -> None:
    _refused(_run(tmp_path, option, value), "is not a finite number", f"finite {option}")


def test_distill_refuses_non_finite_options_before_loading(tmp_path) -> None:
    _refused(
        ["distill", "--suite", "safety", "--out", str(tmp_path / "d"), "--lr", "nan", "--held-out", "inf"],
        "--lr=nan is not a finite number",
        "--held-out=inf is not a finite number",
    )


def test_sweep_checks_every_point_before_the_first(tmp_path) -> None:
    args = ["sweep", "--suite", "safety", "--out", str(tmp_path / "out"), "--vary", "max_new_tokens=2,100000"]
    _refused(args, "+ --max-new-tokens 100,000 = ")
    assert not list((tmp_path / "out").rglob("index.json"))


def test_every_problem_is_reported_at_once(saved_otter, tmp_path) -> None:
    gpt2 = _save(GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2)), tmp_path / "gpt2")
    reward = _save(LlamaForSequenceClassification(_llama(vocab=300, num_labels=1)), tmp_path / "rm")
    config = resolve_run_config(
        "safety",
        out_dir=tmp_path,
        suite_overrides={"max_new_tokens": 5000},
        overrides={"reward_model": reward},
        device="cpu",
    )
    with pytest.raises(PreflightError) as caught:
        preflight([config, resolve_run_config("safety", out_dir=tmp_path, overrides={"base": gpt2})])
    problems = caught.value.problems
    assert any("has vocab 300" in line for line in problems)
    assert any("max_position_embeddings 2,048" in line for line in problems)
    assert any("is a 'gpt2' model" in line for line in problems)
    assert all("\n" not in line for line in problems)


def test_base_without_tokenizer_files_is_refused(tmp_path) -> None:
    base = _save(LlamaForCausalLM(_llama()), tmp_path / "llama")
    _refused(_run(tmp_path, "--base", base), f"base model '{base}'", "its tokenizer files are missing")


def test_expert_with_another_vocabulary_is_refused(tmp_path) -> None:
    expert = _save(LlamaForCausalLM(_llama(vocab=300)), tmp_path / "expert")
    args = ["run", "--suite", "detox", "--out", str(tmp_path / "out"), *SMALL, "--expert", expert]
    _refused(
        args, "DExperts needs the expert to share the LLM's token ids", f"expert '{expert}' has vocab 300"
    )


def test_kv_cache_beyond_memory_is_refused_when_the_context_allows_it(tmp_path) -> None:
    from otterbench.models.tokenizer import load_tokenizer

    folder = tmp_path / "long-context"
    _save(LlamaForCausalLM(_llama(max_position_embeddings=2**40)), folder)
    load_tokenizer().save_pretrained(folder)
    args = _run(tmp_path, "--base", str(folder), "--arms", "base")
    args[args.index("--max-new-tokens") + 1] = "1000000000"
    lines = _refused(args, "the base's KV cache alone needs", "(64 bytes/token in float32)")
    assert not any("max_position_embeddings" in line for line in lines), lines
