"""The faithful arms against the reference algorithms (tests/reference_decoders.py), token for token.

On the tiny profile's models and the suites' own settings (k, w, alpha, filter_p, batch size), each faithful
arm must pick exactly the tokens the reference picks decoding each prompt alone, at batch 1 and batched.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from reference_decoders import args_reference, dexperts_reference, top_p_filter

from otterbench.arms import build_arm
from otterbench.arms.dexperts import nucleus_filter, shift_signal_choice
from otterbench.arms.otter import OtterArm
from otterbench.backends.step import Engine
from otterbench.models.tiny import build_tiny_model
from otterbench.models.tokenizer import load_tokenizer
from otterbench.run.suite import load_prompts, load_suite
from otterbench.workload import Workload, build_workload

N = 6
ROLES = ("base", "expert", "anti_expert")
NUM_PROMPTS = 10  # > the suites' batch size 8: one full batch and one short one


@pytest.fixture(scope="module")
def tiny() -> SimpleNamespace:
    return SimpleNamespace(**{role: build_tiny_model(role) for role in ("reward_model", *ROLES)})


def suite_workload(name: str, batch_size: int | None = None) -> Workload:
    suite = load_suite(name)
    return build_workload(
        load_prompts(suite.prompts_path), load_tokenizer(), batch_size=batch_size or suite.batch_size,
        max_new_tokens=N, k=suite.k, weight=suite.weight, alpha=suite.alpha, filter_p=suite.filter_p,
        seed=suite.seed, num_prompts=NUM_PROMPTS,
    )  # fmt: skip


@pytest.fixture(scope="module")
def args_expected(tiny) -> list[list[int]]:
    wl = suite_workload("safety")
    return [args_reference(tiny.base, tiny.reward_model, list(p), N, wl.k, wl.weight) for p in wl.prompt_ids]


@pytest.fixture(scope="module")
def dexperts_expected(tiny) -> list[list[int]]:
    wl = suite_workload("detox")
    assert wl.filter_p == 0.9  # the reference's default, the suite's value
    models = (tiny.base, tiny.expert, tiny.anti_expert)
    return [dexperts_reference(*models, list(p), N, wl.alpha, wl.filter_p) for p in wl.prompt_ids]


@pytest.mark.parametrize("batch_size", [1, None], ids=["batch-1", "suite-batch"])
def test_args_faithful_picks_the_reference_tokens(tiny, args_expected, batch_size):
    wl = suite_workload("safety", batch_size)
    assert wl.batch_size == (batch_size or 8)
    assert build_arm("args-faithful", tiny).run(wl, "cpu").token_ids == args_expected
    # the reward model must change decisions, or the equality would not test the scoring
    assert args_expected != build_arm("base", tiny).run(wl, "cpu").token_ids


@pytest.mark.parametrize("static", [False, True], ids=["eager", "static-cache"])
@pytest.mark.parametrize("batch_size", [1, None], ids=["batch-1", "suite-batch"])
def test_args_optimized_picks_the_reference_tokens(tiny, args_expected, batch_size, static):
    # the optimized baseline must decide as ARGS does (float32), at batch 1 and batched with left padding,
    # on the eager engine and on the compiled engine's static caches (uncompiled; -m slow compiles them)
    arm = build_arm("args-optimized", tiny)
    arm.engine = Engine(static=static)
    assert arm.run(suite_workload("safety", batch_size), "cpu").token_ids == args_expected


@pytest.mark.parametrize("batch_size", [1, None], ids=["batch-1", "suite-batch"])
def test_dexperts_faithful_picks_the_reference_tokens(tiny, dexperts_expected, batch_size):
    wl = suite_workload("detox", batch_size)
    for name in ("dexperts-faithful", "dexperts-cached"):
        assert build_arm(name, tiny).run(wl, "cpu").token_ids == dexperts_expected, name


def test_nucleus_filter_keeps_what_the_reference_keeps():
    logits = torch.randn(64, 4096, generator=torch.Generator().manual_seed(0)) * 3
    # torch.equal: both run the same ops (sort, softmax, cumsum) on the same float32 tensor
    for top_p in (0.1, 0.5, 0.9, 0.999):
        kept = torch.isfinite(nucleus_filter(logits, top_p))
        assert torch.equal(kept, torch.isfinite(top_p_filter(logits, top_p)))
        assert kept.sum(dim=-1).min() >= 1  # the most probable token always stays
    assert torch.equal(nucleus_filter(logits, 1.0), logits)


def _sharpened(model, factor: float):
    sharp = copy.deepcopy(model)
    with torch.no_grad():
        sharp.lm_head.weight.mul_(factor)
    return sharp


def test_the_filter_changes_the_pick_in_the_separate_dexperts_arms(tiny):
    """Without the filter the experts' shift lifts tokens outside the base's nucleus; the filter stops it.

    The random tiny models are nearly uniform over 4096 tokens (the base's 0.9-nucleus is most of the
    vocabulary), so copies with sharpened LM heads (x20) stand in for trained models with peaked outputs.
    """
    models = SimpleNamespace(**{role: _sharpened(getattr(tiny, role), 20) for role in ROLES})
    filtered = suite_workload("detox", batch_size=4)
    filtered = Workload(**{**filtered.__dict__, "prompt_ids": filtered.prompt_ids[:4]})
    unfiltered = Workload(**{**filtered.__dict__, "filter_p": 1.0})
    expected = [
        dexperts_reference(models.base, models.expert, models.anti_expert, list(p), N, 2.0, 0.9)
        for p in filtered.prompt_ids
    ]
    for name in ("dexperts-faithful", "dexperts-cached"):
        arm = build_arm(name, models)
        with_filter = arm.run(filtered, "cpu").token_ids
        assert with_filter == expected, name
        assert with_filter != arm.run(unfiltered, "cpu").token_ids, name


def test_the_filter_changes_the_pick_of_otter_dexperts():
    """otter-dexperts filters its own base logits the same way before adding alpha * signal."""
    logits = torch.full((1, 1, 8), -10.0)
    logits[0, 0, :3] = torch.tensor([5.0, 4.5, 0.0])  # nucleus at 0.9: tokens 0 and 1
    signal = torch.zeros(1, 1, 8)
    signal[0, 0, 2], signal[0, 0, 5] = 6.0, 20.0  # lifts token 2 (outside) and 5 (far outside) above 0
    out = SimpleNamespace(logits=logits, signal=signal)
    arm = OtterArm("otter-dexperts", None, shift_signal_choice)
    wl = Workload(
        [[1]], batch_size=1, max_new_tokens=1, vocab_size=8, pad_token_id=0, alpha=1.0, filter_p=0.9
    )
    assert arm.decide(out, wl).item() == 0
    assert arm.decide(out, Workload(**{**wl.__dict__, "filter_p": 1.0})).item() == 5
