"""args-optimized's reward-model scorer: the prompt prefilled once, k candidates scored over a shared prefix.

Per prompt one row of a preallocated static cache of S slots (the longest prompt + N kept tokens + k candidate
slots, rounded up to a multiple of 16), in every engine. A step is two fixed-shape calls, each one compiled
graph under `--engine compiled` (so one CUDA graph each on a GPU):

- `score_candidates`: the k candidates of a prompt are k query positions of its row, written to the cache's
  next k slots [L, L+k). Their 4D mask [B,1,k,S] is built inside the step from the fixed [B,S] prompt mask and
  the cache's own length tensor: candidate i sees the prefix's real tokens and slot L+i, nothing else. So
  every candidate reads the prefix keys/values once, shared by the k queries, and no shape changes per step.
- `keep_candidate`: the chosen candidate's key/value (one slot per layer) moves to slot L, the other k-1 are
  dropped by moving the cache's length back (`crop`); nothing else is copied or re-fed.

The candidate's key/value was computed seeing the prefix and itself only, which is what feeding it alone
computes, so the decisions are args-faithful's (tests/test_arms.py, tests/test_faithful.py).
Under the eager engine the cache is static too (allocated per batch, steps uncompiled): a cache grown by
concatenation copies itself every step, and a mask whose width grows makes GPU attention kernels (cuDNN)
plan a new graph for every step.
"""

from __future__ import annotations

from typing import Any

import torch

from otterbench.arms.base import Tally
from otterbench.backends.step import EAGER, Engine, KVMask, backbone_step
from otterbench.compat import drop_last_tokens, new_static_cache
from otterbench.workload import Batch, Workload

# GPU attention kernels pad (copy, per layer) a mask whose last dim is not a multiple of 16
SLOT_MULTIPLE = 16


def padded_slots(used: int) -> int:
    """`used` rounded up to a multiple of SLOT_MULTIPLE."""
    return -(-used // SLOT_MULTIPLE) * SLOT_MULTIPLE


def cache_length(cache: Any, device: torch.device) -> torch.Tensor:
    """Slots filled so far, as a 0-d device tensor (a static cache keeps it as one: no host sync, no recompile)."""
    return torch.as_tensor(cache.get_seq_length(), device=device)


def candidate_mask(
    prompt_mask: torch.Tensor, length: torch.Tensor, k: int, dtype: torch.dtype
) -> torch.Tensor:
    """Additive mask [B,1,k,S]: candidate i (slot length+i) sees the real tokens of `prompt_mask` [B,S] and itself.

    `prompt_mask` is 1 on real tokens fed so far and 0 elsewhere (pads, free and candidate slots).
    """
    slots = torch.arange(prompt_mask.shape[1], device=prompt_mask.device)
    own = slots == (length + torch.arange(k, device=prompt_mask.device))[:, None]  # [k,S]
    allowed = prompt_mask.bool()[:, None, :] | own  # [B,k,S]
    blocked = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return blocked.masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]


def score_candidates(
    reward_model: Any, candidates: torch.Tensor, prompt_mask: torch.Tensor, cache: Any
) -> torch.Tensor:
    """Rewards [B,k] of `prefix + candidate` for the k candidates [B,k] of each row, in one forward."""
    rows, k = candidates.shape
    length = cache_length(cache, candidates.device)
    mask = candidate_mask(prompt_mask, length, k, reward_model.score.weight.dtype)
    # every candidate sits at its row's next position: the count of real tokens so far
    positions = prompt_mask.sum(dim=-1, keepdim=True).expand(rows, k)
    hidden = backbone_step(reward_model.base_model, candidates, mask, positions, cache)  # [B,k,d]
    return reward_model.score(hidden).squeeze(-1)


def keep_candidate(reward_model: Any, pick: torch.Tensor, cache: Any, k: int) -> None:
    """Move candidate `pick` [B] of each row from slot L+pick to slot L, then drop the k candidate slots but one."""
    length = cache_length(cache, pick.device) - k  # the slot of candidate 0: `score` filled [L, L+k)
    source = (length + pick).view(-1, 1, 1, 1)
    for layer in cache.layers:
        for states in (layer.keys, layer.values):  # [B, heads, S, head_dim]
            rows, heads, _, dim = states.shape
            chosen = states.gather(2, source.expand(rows, heads, 1, dim))
            states.index_copy_(2, length.view(1), chosen)
    drop_last_tokens(cache, k - 1)


class SharedPrefixRewardScorer:
    """One cached row per prompt; all k candidates scored as k query positions of that row in one forward."""

    def __init__(self, reward_model: Any, tally: Tally, engine: Engine = EAGER) -> None:
        self.reward_model = reward_model
        self.tally = tally
        self.engine = engine

    def start(self, batch: Batch, workload: Workload) -> None:
        """Prefill the prompts once into a static cache with room for N kept tokens and k candidates."""
        self.k = workload.k
        rows, width = batch.input_ids.shape
        backbone = self.reward_model.base_model
        if self.engine.static:  # the engine's caches are sized for the whole workload and reused per batch
            extra = padded_slots(self.engine.capacity + self.k) - self.engine.capacity
            self.cache = self.engine.new_cache(backbone, rows, extra_slots=extra)
            self.mask = self.engine.new_mask(batch.attention_mask, extra_slots=extra)
        else:
            slots = padded_slots(width + workload.max_new_tokens + self.k)
            self.cache = new_static_cache(backbone.config, slots)
            self.mask = KVMask(batch.attention_mask, slots)
        backbone_step(backbone, batch.input_ids, self.mask.fed, batch.position_ids, self.cache)
        self.tally.call("reward_model")

    def score(self, candidates: torch.Tensor) -> torch.Tensor:
        """Rewards [B,k] of the candidates [B,k]."""
        step = (candidates, self.mask.tensor, self.cache)
        rewards = self.engine.step(score_candidates, self.reward_model, *step)
        self.tally.call("reward_model", rows_scored=candidates.numel())
        return rewards

    def keep(self, pick: torch.Tensor) -> None:
        """Append candidate `pick` [B] of the last `score` to each row's prefix."""
        self.engine.step(keep_candidate, self.reward_model, pick, self.cache, self.k)
        self.mask.grow()
