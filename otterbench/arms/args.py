"""The ARGS arms with a separate reward model: per token, one LLM forward, top-k candidates, and the reward
model's score of each `prefix + candidate`; pick argmax(logit + w*reward).

Both arms make the same decisions in exact arithmetic (in bf16 their kernel shapes round differently, and a
run with both says whether a near-tie flipped: results/decisions.py); they differ only in how the reward
model is driven:
- `args-faithful` follows the ARGS reference code: one batched reward-model call of k rows
  `prefix + candidate` per prompt per step, the prompt prefilled k times at the first step, and the reward
  model's cache re-expanded to k rows (copied) after each pick.
- `args-optimized` prefills the prompt once into a static cache and scores all k candidates of a prompt as k
  query positions of one row over the shared prefix, in fixed-shape steps (arms/shared_prefix.py); the chosen
  candidate's keys/values are kept (one slot per layer moved) and the other k-1 dropped: nothing is re-fed or
  copied.

The reward is the reward model's one-label score head applied to the hidden state of the candidate token
(the last real token of `prefix + candidate`). We apply the head ourselves rather than through the
classifier's pooling, which locates the last token by comparing ids with the pad id and would misplace it
whenever a candidate's id equals the pad id.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch

from otterbench.arms.base import Arm, StepObserver, Tally
from otterbench.arms.decoding import CachedLM, args_choice
from otterbench.arms.shared_prefix import SharedPrefixRewardScorer
from otterbench.backends.step import EAGER, Engine, backbone_step, select_rows
from otterbench.workload import Batch, Workload


class RewardScorer(Protocol):
    """Scores k candidate continuations per prompt with a separate reward model."""

    def start(self, batch: Batch, workload: Workload) -> None: ...

    def score(self, candidates: torch.Tensor) -> torch.Tensor: ...

    def keep(self, pick: torch.Tensor) -> None: ...


class FaithfulRewardScorer:
    """The reference's way: k full rows per prompt, the cache re-expanded (copied) to k rows every step."""

    def __init__(self, reward_model: Any, tally: Tally, engine: Engine = EAGER) -> None:
        self.backbone = reward_model.base_model  # the decoder under the score head
        self.head = reward_model.score  # one-label linear head
        self.tally = tally
        self.engine = engine

    def start(self, batch: Batch, workload: Workload) -> None:
        self.prompt_ids, self.prompt_mask, self.cache = batch.input_ids, batch.attention_mask, None

    def score(self, candidates: torch.Tensor) -> torch.Tensor:
        rows, k = candidates.shape
        flat = candidates.reshape(rows * k, 1)
        if self.cache is None:  # first step: the prompt is prefilled k times, once per candidate row
            self.cache = self.engine.new_cache(self.backbone, rows * k)
            self.mask = self.engine.new_mask(self.prompt_mask.repeat_interleave(k, dim=0))
            self.mask.grow()  # [rows*k, P+1]
            input_ids = torch.cat([self.prompt_ids.repeat_interleave(k, dim=0), flat], dim=1)
            positions = self.mask.positions(input_ids.shape[1])
            hidden = backbone_step(self.backbone, input_ids, self.mask.fed, positions, self.cache)
        else:
            self.mask.grow()
            step = (self.mask.tensor, self.mask.positions(1), self.cache)
            hidden = self.engine.step(backbone_step, self.backbone, flat, *step)
        self.tally.call("reward_model", rows_scored=rows * k)
        return self.head(hidden[:, -1]).view(rows, k)

    def keep(self, pick: torch.Tensor) -> None:
        # every one of a prompt's k rows continues from the chosen row: select it k times (a copy per step)
        k = self.mask.tensor.shape[0] // pick.shape[0]
        chosen_rows = torch.arange(pick.shape[0], device=pick.device) * k + pick
        select_rows(self.cache, chosen_rows.repeat_interleave(k))


class ArgsArm(Arm):
    """LLM + separate reward model, ARGS greedy decision per token."""

    def __init__(self, name: str, llm: Any, reward_model: Any, scorer: type) -> None:
        self.name = name
        self.llm = llm
        self.reward_model = reward_model
        self.scorer = scorer

    def generate_batch(
        self, batch: Batch, workload: Workload, observer: StepObserver, tally: Tally
    ) -> torch.Tensor:
        lm = CachedLM(self.llm, "llm", tally, self.engine)
        scorer: RewardScorer = self.scorer(self.reward_model, tally, self.engine)
        scorer.start(batch, workload)
        out = lm.start(batch)
        tokens: list[torch.Tensor] = []
        for step in range(workload.max_new_tokens):
            if step:
                out = lm.feed(tokens[-1])
            token, pick = args_choice(out.logits[:, -1], workload.k, workload.weight, scorer.score)
            tokens.append(token)
            observer.end_step()
            if step + 1 < workload.max_new_tokens:
                scorer.keep(pick)
        return torch.cat(tokens, dim=1)


def args_faithful(llm: Any, reward_model: Any) -> ArgsArm:
    """The ARGS reference's reward-model usage."""
    return ArgsArm("args-faithful", llm, reward_model, FaithfulRewardScorer)


def args_optimized(llm: Any, reward_model: Any) -> ArgsArm:
    """Same decisions, shared-prefix reward-model cache, no per-step copies."""
    return ArgsArm("args-optimized", llm, reward_model, SharedPrefixRewardScorer)
