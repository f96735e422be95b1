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
from otterbench.arms.decoding import CachedLM, args_choice, grow_mask
from otterbench.compat import cache_kwargs, output_cache
from otterbench.run.workload import Batch, Workload, positions_from_mask


class RewardScorer(Protocol):
    """Scores k candidate continuations per prompt with a separate reward model."""

    def start(self, batch: Batch) -> None: ...

    def score(self, candidates: torch.Tensor) -> torch.Tensor: ...

    def keep(self, pick: torch.Tensor) -> None: ...


class FaithfulRewardScorer:
    """The reference's way: k full rows per prompt, the cache re-expanded (copied) to k rows every step."""

    def __init__(self, reward_model: Any, tally: Tally) -> None:
        self.backbone = reward_model.base_model  # the decoder under the score head
        self.head = reward_model.score  # one-label linear head
        self.tally = tally

    def start(self, batch: Batch) -> None:
        self.prompt_ids, self.mask, self.cache = batch.input_ids, batch.attention_mask, None

    def score(self, candidates: torch.Tensor) -> torch.Tensor:
        rows, k = candidates.shape
        flat = candidates.reshape(rows * k, 1)
        if self.cache is None:  # first step: the prompt is prefilled k times, once per candidate row
            self.mask = self.mask.repeat_interleave(k, dim=0)
            input_ids = torch.cat([self.prompt_ids.repeat_interleave(k, dim=0), flat], dim=1)
        else:
            input_ids = flat
        self.mask = grow_mask(self.mask)  # [rows*k, L+1]
        positions = positions_from_mask(self.mask)[:, -input_ids.shape[1] :]
        out = self.backbone(
            input_ids=input_ids,
            attention_mask=self.mask,
            position_ids=positions,
            use_cache=True,
            **cache_kwargs(self.cache),
        )
        self.cache = output_cache(out)
        self.tally.call("reward_model", rows_scored=rows * k)
        return self.head(out.last_hidden_state[:, -1]).view(rows, k)

    def keep(self, pick: torch.Tensor) -> None:
        # every one of a prompt's k rows continues from the chosen row: select it k times (a copy per step)
        k = self.mask.shape[0] // pick.shape[0]
        chosen_rows = torch.arange(pick.shape[0], device=pick.device) * k + pick
        self.cache.batch_select_indices(chosen_rows.repeat_interleave(k))


class SharedPrefixRewardScorer:
    """One cached row per prompt; all k candidates scored as k query positions of that row in one forward."""

    def __init__(self, reward_model: Any, tally: Tally) -> None:
        self.backbone = reward_model.base_model
        self.head = reward_model.score
        self.tally = tally

    def start(self, batch: Batch) -> None:
        self.mask = batch.attention_mask
        out = self.backbone(
            input_ids=batch.input_ids,
            attention_mask=self.mask,
            position_ids=batch.position_ids,
            use_cache=True,
            **cache_kwargs(None),
        )
        self.cache = output_cache(out)
        self.tally.call("reward_model")

    def candidate_mask(self, k: int) -> torch.Tensor:
        """Additive 4D mask [B,1,k,L+k]: candidate i sees the prefix's real tokens and itself only."""
        rows, length = self.mask.shape
        prefix = self.mask.bool()[:, None, :].expand(rows, k, length)
        itself = torch.eye(k, dtype=torch.bool, device=self.mask.device).expand(rows, k, k)
        allowed = torch.cat([prefix, itself], dim=-1)[:, None]
        dtype = self.head.weight.dtype
        blocked = torch.zeros(allowed.shape, dtype=dtype, device=self.mask.device)
        return blocked.masked_fill(~allowed, torch.finfo(dtype).min)

    def score(self, candidates: torch.Tensor) -> torch.Tensor:
        rows, k = candidates.shape
        # every candidate sits at the same next position of its prompt
        positions = self.mask.sum(dim=-1, keepdim=True).expand(rows, k)
        out = self.backbone(
            input_ids=candidates,
            attention_mask=self.candidate_mask(k),
            position_ids=positions,
            use_cache=True,
            **cache_kwargs(self.cache),
        )
        self.cache = output_cache(out)
        self.tally.call("reward_model", rows_scored=rows * k)
        return self.head(out.last_hidden_state).squeeze(-1)  # [B,k]

    def keep(self, pick: torch.Tensor) -> None:
        # The chosen candidate's keys/values were computed seeing the prefix and itself only, which is what
        # feeding it alone would compute: move them to the first new slot and crop the other k-1 away.
        length = self.mask.shape[1]
        k = self.cache.get_seq_length() - length
        rows = torch.arange(pick.shape[0], device=pick.device)
        for layer in self.cache.layers:
            for states in (layer.keys, layer.values):  # [B, heads, L+k, head_dim]
                states[:, :, length] = states[rows, :, length + pick]
        if k > 1:
            self.cache.crop(-(k - 1))
        self.mask = grow_mask(self.mask)


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
        lm = CachedLM(self.llm, "llm", tally)
        scorer: RewardScorer = self.scorer(self.reward_model, tally)
        scorer.start(batch)
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
