"""The accel arms: speculative decoding gives the base's greedy tokens exactly, and its counters add up."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from otterbench.arms import build_arm
from otterbench.arms.registry import knob_defaults
from otterbench.models.build import make_causal_lm
from otterbench.otter import OtterSpec, insert_otter
from otterbench.workload import Workload

N = 9
PROMPT_LENGTHS = (5, 9, 3, 7)


@pytest.fixture(scope="module")
def models() -> SimpleNamespace:
    # the draft: same vocabulary, half the width and layers of the base
    draft = make_causal_lm(
        seed=4, hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64
    )
    return SimpleNamespace(base=make_causal_lm(seed=0), draft=draft)


def workload(batch_size: int = 1, **knobs) -> Workload:
    generator = torch.Generator().manual_seed(0)
    prompts = [torch.randint(3, 256, (n,), generator=generator).tolist() for n in PROMPT_LENGTHS]
    return Workload(
        prompts,
        batch_size=batch_size,
        vocab_size=256,
        pad_token_id=0,
        max_new_tokens=N,
        knobs={**knob_defaults(), **knobs},
    )


def check_counts(out, wl: Workload, decider: str) -> None:
    """Every prompt: one prefill, then each verifying forward yields its kept drafts plus one base token."""
    spec = out.speculation
    assert [len(row) for row in out.token_ids] == [N] * wl.num_prompts and spec[
        "new_tokens"
    ] == N * wl.num_prompts
    assert out.calls[decider] == wl.num_prompts + spec["verify_forwards"]
    assert spec["new_tokens"] == wl.num_prompts + spec["verify_forwards"] + sum(spec["accepted_by_position"])
    pairs = zip(spec["accepted_by_position"], spec["proposed_by_position"])
    assert all(0 <= accepted <= proposed for accepted, proposed in pairs)
    # a draft at position i+1 is only kept when the one at position i was
    assert spec["accepted_by_position"] == sorted(spec["accepted_by_position"], reverse=True)


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("draft_length", [1, 3, 5])
def test_spec_separate_gives_the_base_tokens(models, batch_size, draft_length):
    wl = workload(batch_size, draft_length=draft_length)
    base = build_arm("base", models).run(wl, "cpu")
    out = build_arm("spec-separate", models).run(wl, "cpu")
    assert out.token_ids == base.token_ids
    check_counts(out, wl, "llm")
    assert out.speculation["draft_length"] == draft_length


@pytest.mark.parametrize("init", ["copy", "normal"])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_otter_spec_gives_the_base_tokens(models, init, batch_size):
    otter = insert_otter(models.base, OtterSpec.from_ratio(models.base.config, signal="vocab", init=init))
    wl = workload(batch_size)
    out = build_arm("otter-spec", models, otter).run(wl, "cpu")
    assert out.token_ids == build_arm("base", models).run(wl, "cpu").token_ids
    check_counts(out, wl, "otter")
    assert out.speculation["draft_length"] == 1 and out.calls["llm"] == out.calls["draft"] == 0


def test_a_perfect_draft_is_always_accepted(models):
    """With the base as its own draft, every draft is kept: N tokens take 1 + ceil((N-1)/(γ+1)) base forwards."""
    gamma = 3
    wl = workload(draft_length=gamma)
    out = build_arm("spec-separate", SimpleNamespace(base=models.base, draft=models.base)).run(wl, "cpu")
    spec = out.speculation
    assert (
        spec["accepted_by_position"] == spec["proposed_by_position"] and sum(spec["proposed_by_position"]) > 0
    )
    assert out.calls["llm"] == wl.num_prompts * (1 + -(-(N - 1) // (gamma + 1)))
    assert out.token_ids == build_arm("base", models).run(wl, "cpu").token_ids


def test_otter_spec_accepts_a_signal_that_knows_the_token_after_next(models):
    """A signal head that scores the base's own token t+2 is accepted at every draft."""
    otter = insert_otter(models.base, OtterSpec.from_ratio(models.base.config, signal="vocab"))
    wl = workload()
    base_tokens = build_arm("base", models).run(wl, "cpu").token_ids
    sequences = [list(p) + row for p, row in zip(wl.prompt_ids, base_tokens)]

    def oracle_signal(_module, args, kwargs, output):
        # the decoder's input length tells where in the (single-row) sequence this forward sits
        ids = kwargs["input_ids"][0].tolist()
        end = int(kwargs["position_ids"][0, -1]) + 1
        row = next(s for s in sequences if s[end - len(ids) : end] == ids and len(s) >= end)
        scores = torch.full_like(output.signal, -1.0)
        for column, position in enumerate(range(end - len(ids), end)):
            if position + 2 < len(row):
                scores[0, column, row[position + 2]] = 1.0
        output.signal = scores
        return output

    hook = otter.register_forward_hook(oracle_signal, with_kwargs=True)
    try:
        out = build_arm("otter-spec", models, otter).run(wl, "cpu")
    finally:
        hook.remove()
    assert out.token_ids == base_tokens
    spec = out.speculation
    assert spec["accepted_by_position"] == spec["proposed_by_position"]
    assert out.calls["otter"] == wl.num_prompts * (1 + (N - 1) // 2 + (N - 1) % 2)


def test_spec_separate_matches_transformers_assisted_generation(models):
    """Our loop and transformers' greedy assisted generation (constant draft length) pick the same tokens."""
    wl = workload(draft_length=3)
    ours = build_arm("spec-separate", models).run(wl, "cpu").token_ids
    models.draft.generation_config.num_assistant_tokens = 3
    models.draft.generation_config.num_assistant_tokens_schedule = "constant"
    for prompt, row in zip(wl.prompt_ids, ours):
        ids = torch.tensor([prompt])
        generated = models.base.generate(
            ids, attention_mask=torch.ones_like(ids), assistant_model=models.draft, do_sample=False,
            max_new_tokens=N, min_new_tokens=N, pad_token_id=0,
        )  # fmt: skip
        assert generated[0, len(prompt) :].tolist() == row


def test_otter_spec_runs_on_the_fused_layout(models):
    """The fused checkpoint's cache is a plain transformers cache: cropping rejected drafts works there too."""
    otter = insert_otter(models.base, OtterSpec.from_ratio(models.base.config, signal="vocab", init="normal"))
    wl = workload(3)
    out = build_arm("otter-spec", models, otter.to_fused()).run(wl, "cpu")
    # the fused layout may round differently from the base (docs/otter.md); on this float32 model it does not flip
    assert out.token_ids == build_arm("base", models).run(wl, "cpu").token_ids
    check_counts(out, wl, "otter")
