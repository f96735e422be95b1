"""distill --suite accel: both drafts train on the base's continuations; targets aligned; saved drafts reload."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from transformers import AutoModelForCausalLM

from otterbench.arms.registry import knob_defaults
from otterbench.distillation.accel import (
    DRAFT_DIR,
    HELD_OUT_FILE,
    collect_continuations,
    corpus_prompts,
    distill_accel,
    save_accel_distilled,
    score_draft,
)
from otterbench.models.build import make_causal_lm
from otterbench.otter import OtterSpec, insert_otter, load_otter
from otterbench.workload import Workload

N = 6


def small_models() -> SimpleNamespace:
    draft = make_causal_lm(
        seed=4, hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64
    )
    return SimpleNamespace(base=make_causal_lm(seed=0), draft=draft)


def prompt_ids(count: int = 16) -> list[list[int]]:
    generator = torch.Generator().manual_seed(0)
    return [torch.randint(3, 256, (3 + i % 5,), generator=generator).tolist() for i in range(count)]


@pytest.fixture(scope="module")
def distilled():
    models = small_models()
    draft_before = {name: t.clone() for name, t in models.draft.state_dict().items()}
    base_before = {name: t.clone() for name, t in models.base.state_dict().items()}
    report = distill_accel(models, prompt_ids(), steps=30, lr=1e-3, max_new_tokens=N, batch_size=8)
    return models, report, base_before, draft_before


def sequences(models) -> list[list[int]]:
    workload = Workload(
        prompt_ids(), batch_size=8, vocab_size=256, pad_token_id=0, max_new_tokens=N, knobs=knob_defaults()
    )
    return collect_continuations(models.base, workload, "cpu")


def test_the_base_is_its_own_perfect_next_token_draft():
    """Target alignment, t+1: teacher-forced on its own greedy tokens, the base predicts every one of them."""
    models = small_models()
    scores = score_draft(models.base, sequences(models), N, pad_id=0, device="cpu", ahead=1)
    assert scores.acceptance == 1.0 and scores.targets == 16 * (N - 1)


def test_a_signal_equal_to_the_next_positions_logits_is_a_perfect_otter_draft():
    """Target alignment, t+2: a signal at t equal to the base's logits at t+1 predicts token t+2 exactly."""
    models = small_models()
    otter = insert_otter(models.base, OtterSpec.from_ratio(models.base.config, signal="vocab"))

    def shift(_module, _args, output):
        output.signal = torch.cat([output.logits[:, 1:], output.logits[:, -1:]], dim=1)  # [B,W,V]
        return output

    hook = otter.register_forward_hook(shift)
    try:
        scores = score_draft(otter, sequences(models), N, pad_id=0, device="cpu", ahead=2)
    finally:
        hook.remove()
    assert scores.acceptance == 1.0


def test_both_drafts_learn_and_the_base_stays_frozen(distilled):
    models, report, base_before, draft_before = distilled
    for losses in (report.otter_losses, report.draft_losses):
        assert len(losses) == 30 and sum(losses[-5:]) < sum(losses[:5])
    assert all(torch.equal(t, base_before[name]) for name, t in models.base.state_dict().items())
    # the caller's draft model is not trained in place: distillation trains a copy
    assert all(torch.equal(t, draft_before[name]) for name, t in models.draft.state_dict().items())
    assert report.held_out_prompts == 4 and report.train_prompts == 12
    assert report.otter_before.targets == report.draft_before.targets == 4 * (N - 1)


def test_saved_drafts_reload_exactly(distilled, tmp_path):
    models, report, *_ = distilled
    texts = [f"prompt {i}" for i in range(16)]
    save_accel_distilled(report, tmp_path, texts)
    otter = load_otter(models.base, tmp_path)
    for name, tensor in report.otter.inserted_state_dict().items():
        assert torch.equal(otter.inserted_state_dict()[name], tensor)
    draft = AutoModelForCausalLM.from_pretrained(tmp_path / DRAFT_DIR)
    ids = torch.tensor([prompt_ids()[0]])
    # the same computation: the same weights in the same modules, dtype and attention implementation
    assert torch.equal(draft(ids).logits, report.draft(ids).logits)
    held = [json.loads(line)["prompt"] for line in (tmp_path / HELD_OUT_FILE).read_text().splitlines()]
    assert held == [texts[i] for i in report.held_out_rows]
    saved = json.loads((tmp_path / "distill_report.json").read_text())
    assert saved["otter_after"]["acceptance"] == report.otter_after.acceptance


def test_corpus_prompts_never_open_like_a_suite_prompt():
    suite = ["The shop on the corner closes early, so", "Hello there"]
    extra = corpus_prompts(suite)
    assert extra and not any(line.startswith("The shop on the corner") for line in extra)
