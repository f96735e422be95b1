"""args-optimized's shared-prefix scorer: args-faithful's rewards step after step, in fixed shapes, no copies.

The two scorers compute the same rewards by different kernels (k one-position rows vs k query positions of one
row over a shared prefix), so the rewards are compared with a dtype tolerance and decisions token for token
(tests/test_faithful.py checks the tokens against the ARGS reference at batch 1 and 8).
"""

from __future__ import annotations

import pytest
import torch

from otterbench.arms.args import FaithfulRewardScorer
from otterbench.arms.base import Tally
from otterbench.arms.registry import knob_defaults
from otterbench.arms.shared_prefix import SharedPrefixRewardScorer, padded_slots
from otterbench.backends.step import Engine
from otterbench.models.build import make_reward_model
from otterbench.workload import Workload

K, STEPS = 4, 5
# bf16 keeps 8 bits of mantissa: k rows vs k query positions round differently through every layer (seen:
# max |diff| 0.002 on rewards of ~0.5; a keep that drops the chosen key/value is off by 0.15 here)
TOLERANCE = {torch.float32: dict(rtol=1e-4, atol=1e-5), torch.bfloat16: dict(rtol=1.6e-2, atol=1e-2)}


def workload() -> Workload:
    generator = torch.Generator().manual_seed(0)
    rows = [torch.randint(3, 256, (n,), generator=generator).tolist() for n in (7, 3, 5)]
    knobs = {**knob_defaults(), "k": K}
    return Workload(rows, batch_size=3, max_new_tokens=STEPS, vocab_size=256, pad_token_id=0, knobs=knobs)


def follow(scorer, batch, wl: Workload, candidates: list[torch.Tensor], picks: list[torch.Tensor]) -> list:
    """The scorer's rewards [B,k] at each step, keeping the given picks (one trajectory for every scorer)."""
    rewards = []
    with torch.inference_mode():
        scorer.start(batch, wl)
        for step, chosen in enumerate(candidates):
            rewards.append(scorer.score(chosen).float())
            if step + 1 < len(candidates):
                scorer.keep(picks[step])
    return rewards


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("static", [False, True], ids=["eager", "static"])
def test_shared_prefix_rewards_track_faithful_over_steps(dtype, static):
    reward_model = make_reward_model(seed=1, hidden_size=64, num_heads=4, num_kv_heads=2).to(dtype)
    wl = workload()
    batch = next(wl.batches())
    generator = torch.Generator().manual_seed(2)
    candidates = [torch.randint(3, 256, (3, K), generator=generator) for _ in range(STEPS)]
    picks = [torch.randint(0, K, (3,), generator=generator) for _ in range(STEPS)]
    engine = Engine(static=static)
    engine.begin(wl)
    faithful = follow(FaithfulRewardScorer(reward_model, Tally(), engine), batch, wl, candidates, picks)
    optimized = follow(SharedPrefixRewardScorer(reward_model, Tally(), engine), batch, wl, candidates, picks)
    for step, (want, got) in enumerate(zip(faithful, optimized)):
        torch.testing.assert_close(got, want, **TOLERANCE[dtype], msg=lambda m, s=step: f"step {s}: {m}")
    assert not torch.allclose(faithful[0], faithful[1])  # different candidates: the check is not vacuous


def test_scoring_steps_keep_one_shape_and_the_cache_in_place():
    """Every scoring step of a batch gets the same input shapes and strides (one compiled graph, one attention
    plan) and the reward model's cache tensors never move (the chosen key/value is kept without a copy)."""
    reward_model = make_reward_model(seed=1, hidden_size=64, num_heads=4, num_kv_heads=2)
    wl = workload()
    batch = next(wl.batches())
    seen = []

    class Recording(Engine):
        def step(self, fn, model, *args):
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            cache = next(a for a in args if hasattr(a, "layers"))
            pointers = tuple(t.data_ptr() for layer in cache.layers for t in (layer.keys, layer.values))
            seen.append((fn.__name__, [(t.shape, t.stride()) for t in tensors], pointers))
            return super().step(fn, model, *args)

    scorer = SharedPrefixRewardScorer(reward_model, Tally(), Recording())
    follow(scorer, batch, wl, [torch.full((3, K), 5)] * STEPS, [torch.tensor([0, 1, 2])] * STEPS)
    scores = [entry for entry in seen if entry[0] == "score_candidates"]
    assert len(scores) == STEPS
    assert all(entry[1:] == scores[0][1:] for entry in seen if entry[0] == "score_candidates")
    assert len({entry[2] for entry in seen}) == 1  # every step, scoring or keeping, on the same cache storage
    slots = padded_slots(batch.input_ids.shape[1] + STEPS + K)
    assert scores[0][1][1][0] == torch.Size([3, slots])  # the prompt mask spans the whole static cache
