"""--save-outputs writes outputs.jsonl; `models save` writes checkpoints that run with --base and decide alike."""

from __future__ import annotations

import json

from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
from typer.testing import CliRunner

from otterbench.cli import app
from otterbench.results.files import load_run
from otterbench.run import pipeline as runner
from otterbench.run.config import resolve_run_config

SMALL = {"num_prompts": 3, "max_new_tokens": 3, "batch_size": 2, "repeats": 1, "warmup": 0, "k": 4}
ARMS = ["base", "args-faithful", "args-token"]


def run_small(tmp_path, **fields):
    config = resolve_run_config(
        "safety", out_dir=tmp_path, suite_overrides=SMALL, arms=ARMS, isolation="inline", device="cpu",
        save_outputs=True, **fields,
    )  # fmt: skip
    return runner.run_suite(config)


def test_saved_tiny_models_load_with_auto_classes_and_run_as_the_tiny_profile(tmp_path):
    saved = tmp_path / "models"
    result = CliRunner().invoke(app, ["models", "save", "--profile", "tiny", str(saved)])
    assert result.exit_code == 0, result.output
    for role in ("base", "reward_model", "expert", "anti_expert", "token_reward_model"):
        auto = AutoModelForSequenceClassification if role == "reward_model" else AutoModelForCausalLM
        auto.from_pretrained(saved / role)
        assert len(AutoTokenizer.from_pretrained(saved / role)) == 4096
    tiny = run_small(tmp_path / "tiny")
    roles = {"base": "base", "reward_model": "reward_model", "token_reward_model": "token_reward_model"}
    overrides = {key: str(saved / folder) for key, folder in roles.items()}
    from_disk = run_small(tmp_path / "disk", overrides=overrides)
    hashes = [
        {a["name"]: a["token_ids_hash"] for a in load_run(o.run_dir)["arms"]} for o in (tiny, from_disk)
    ]
    assert hashes[0] == hashes[1] and None not in hashes[0].values()
    assert load_run(from_disk.run_dir)["config"]["models"]["base"] == str(saved / "base")
    lines = [(o.run_dir / "outputs.jsonl").read_text().splitlines() for o in (tiny, from_disk)]
    assert lines[0] == lines[1]


def test_outputs_jsonl_has_one_line_per_arm_and_prompt(tmp_path):
    outcome = run_small(tmp_path)
    rows = [json.loads(line) for line in (outcome.run_dir / "outputs.jsonl").read_text().splitlines()]
    assert [(r["arm"], r["prompt_index"]) for r in rows] == [(a, i) for a in ARMS for i in range(3)]
    prompts = {tuple(r["prompt_ids"]) for r in rows}
    assert len(prompts) == 3 and all(ids[0] == 1 and 0 not in ids for ids in prompts)  # unpadded: no pad id
    assert all(len(r["token_ids"]) == 3 and isinstance(r["text"], str) for r in rows)
    results = load_run(outcome.run_dir)
    assert results["config"]["save_outputs"] is True
    by_arm = {r["arm"]: [] for r in rows}
    for r in rows:
        by_arm[r["arm"]].append(r["token_ids"])
    from otterbench.run.record import token_ids_hash

    assert {a["name"]: a["token_ids_hash"] for a in results["arms"]} == {
        arm: token_ids_hash(ids) for arm, ids in by_arm.items()
    }
