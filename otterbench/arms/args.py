"""The ARGS arms with a separate reward model: per token, one LLM forward, top-k candidates, and the reward
model's score of each `prefix + candidate`; pick argmax(logit + w*reward).

Both arms make the same decisions; they differ only in how the reward model is driven:
- `args-faithful` follows the ARGS reference code: one batched reward-model call of k rows
  `prefix + candidate` per prompt per step, the prompt prefilled k times at the first step, and the reward
  model's cache re-expanded to k rows (copied) after each pick.
- `args-optimized` prefills the prompt once and scores all k candidates of a prompt as k query positions of
  one row, under a 4D attention mask letting each candidate see the prefix and itself only; the chosen
  candidate's keys/values are kept in place and the other k-1 cropped, so nothing is re-fed or copied.

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
from otterbench.arms.engine import EAGER, Engine, backbone_step, select_rows
from otterbench.compat import drop_last_tokens
from otterbench.run.workload import Batch, Workload


class RewardScorer(Protocol):
    """Scores k candidate continuations per prompt with a separate reward model."""

    def start(self, batch: Batch, k: int) -> None: ...

    def score(self, candidates: torch.Tensor) -> torch.Tensor: ...

    def keep(self, pick: torch.Tensor) -> None: ...


class FaithfulRewardScorer:
    """The reference's way: k full rows per prompt, the cache re-expanded (copied) to k rows every step."""

    def __init__(self, reward_model: Any, tally: Tally, engine: Engine = EAGER) -> None:
        self.backbone = reward_model.base_model  # the decoder under the score head
        self.head = reward_model.score  # one-label linear head
        self.tally = tally
        self.engine = engine

    def start(self, batch: Batch, k: int) -> None:
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


class SharedPrefixRewardScorer:
    """One cached row per prompt; all k candidates scored as k query positions of that row in one forward."""

    def __init__(self, reward_model: Any, tally: Tally, engine: Engine = EAGER) -> None:
        self.backbone = reward_model.base_model
        self.head = reward_model.score
        self.tally = tally
        self.engine = engine

    def start(self, batch: Batch, k: int) -> None:
        self.k = k  # candidates per step: k more cache slots while they are scored
        self.cache = self.engine.new_cache(self.backbone, batch.input_ids.shape[0], extra_slots=k)
        self.mask = self.engine.new_mask(batch.attention_mask, extra_slots=k)
        backbone_step(self.backbone, batch.input_ids, self.mask.fed, batch.position_ids, self.cache)
        self.tally.call("reward_model")

    def candidate_mask(self, k: int) -> torch.Tensor:
        """Additive 4D mask [B,1,k,W]: candidate i (cache slot L+i) sees the prefix's real tokens and itself.

        W = L+k eager; the static cache's capacity under a static engine (slots past L+k blocked).
        """
        rows, length = self.mask.fed.shape
        width = self.mask.tensor.shape[1] if self.mask.static else length + k
        device = self.mask.tensor.device
        allowed = torch.zeros(rows, k, width, dtype=torch.bool, device=device)
        allowed[:, :, :length] = self.mask.fed.bool()[:, None, :]
        slots = torch.arange(k, device=device)
        allowed[:, slots, length + slots] = True
        dtype = self.head.weight.dtype
        blocked = torch.zeros(allowed.shape, dtype=dtype, device=device)
        return blocked.masked_fill(~allowed, torch.finfo(dtype).min)[:, None]

    def score(self, candidates: torch.Tensor) -> torch.Tensor:
        rows, self.k = candidates.shape
        # every candidate sits at the same next position of its prompt
        positions = self.mask.fed.sum(dim=-1, keepdim=True).expand(rows, self.k)
        mask = self.candidate_mask(self.k)
        hidden = self.engine.step(backbone_step, self.backbone, candidates, mask, positions, self.cache)
        self.tally.call("reward_model", rows_scored=rows * self.k)
        return self.head(hidden).squeeze(-1)  # [B,k]

    def keep(self, pick: torch.Tensor) -> None:
        # The chosen candidate's keys/values were computed seeing the prefix and itself only, which is what
        # feeding it alone would compute: move them to the first new slot and drop the other k-1.
        length = self.mask.length
        rows = torch.arange(pick.shape[0], device=pick.device)
        for layer in self.cache.layers:
            for states in (layer.keys, layer.values):  # [B, heads, slots, head_dim]
                states[:, :, length] = states[rows, :, length + pick]
        drop_last_tokens(self.cache, self.k - 1)
        self.mask.grow()


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
        scorer.start(batch, workload.k)
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
