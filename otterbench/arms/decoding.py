"""Pieces the arms share: a causal LM decoded with its own KV cache, and the ARGS decision rule.

Left padding everywhere: the attention mask grows by one column of ones per generated token, and every model
(LLM, reward model, experts, Otter) gets position ids computed from that mask, so a prompt's tokens sit at
the same positions whatever its padding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from otterbench.arms.base import Tally
from otterbench.compat import cache_kwargs, output_cache
from otterbench.otter import FusedOtterModel, OtterModel
from otterbench.run.workload import Batch, positions_from_mask


def grow_mask(attention_mask: torch.Tensor, columns: int = 1) -> torch.Tensor:
    """The mask with `columns` real (1) positions appended on the right."""
    ones = attention_mask.new_ones(attention_mask.shape[0], columns)
    return torch.cat([attention_mask, ones], dim=1)


class CachedLM:
    """One causal LM (a transformers model or an OtterModel) decoded over a batch with its own KV cache."""

    def __init__(self, model: Any, role: str, tally: Tally) -> None:
        self.model = model
        self.role = role  # the key counted in Tally.calls
        self.tally = tally
        # Otter models (split or fused layout) take `past_key_values` by name on every release;
        # transformers models use compat's name
        self.is_otter = isinstance(model, (OtterModel, FusedOtterModel))
        self.cache: Any = None
        self.mask: torch.Tensor | None = None

    def _call(self, input_ids: torch.Tensor) -> Any:
        positions = positions_from_mask(self.mask)[:, -input_ids.shape[1] :]
        cache = {"past_key_values": self.cache} if self.is_otter else cache_kwargs(self.cache)
        out = self.model(
            input_ids=input_ids, attention_mask=self.mask, position_ids=positions, use_cache=True, **cache
        )
        self.cache = out.past_key_values if self.is_otter else output_cache(out)
        self.tally.call(self.role)
        return out

    def start(self, batch: Batch) -> Any:
        """Prefill the prompt; returns the model output (logits [B,P,V], and .signal for Otter)."""
        self.cache = None
        self.mask = batch.attention_mask
        return self._call(batch.input_ids)

    def feed(self, tokens: torch.Tensor) -> Any:
        """Append `tokens` [B,1] and run one cached step; returns the model output for that position."""
        self.mask = grow_mask(self.mask)
        return self._call(tokens)


def full_forward(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Last-position logits [B,V] of an uncached forward over the whole sequence so far."""
    positions = positions_from_mask(attention_mask)
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, use_cache=False)
    return out.logits[:, -1]


def args_choice(
    logits: torch.Tensor, k: int, weight: float, rewards_of: Callable[[torch.Tensor], torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """ARGS greedy: top-k of `logits` [B,V], score `logit + w*reward`, pick the best.

    `rewards_of(candidates [B,k]) -> [B,k]` supplies the reward of each `prefix + candidate`.
    Returns (tokens [B,1], pick [B]: the chosen candidate's index among the k).
    """
    top_logits, candidates = logits.float().topk(k, dim=-1)  # [B,k] each, best first
    scores = top_logits + weight * rewards_of(candidates).float()
    pick = scores.argmax(dim=-1)
    return candidates.gather(1, pick[:, None]), pick


def greedy(logits: torch.Tensor) -> torch.Tensor:
    """Greedy next tokens [B,1] from last-position scores [B,V]."""
    return logits.argmax(dim=-1, keepdim=True)
