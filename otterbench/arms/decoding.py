"""Pieces the arms share: a causal LM decoded with its own KV cache, and the ARGS decision rule.

Left padding everywhere: the attention mask grows by one column of ones per generated token, and every model
(LLM, reward model, experts, Otter) gets position ids computed from that mask, so a prompt's tokens sit at
the same positions whatever its padding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from otterbench.arms.base import Tally
from otterbench.backends.step import EAGER, Engine, KVMask, grow_mask, lm_step
from otterbench.workload import Batch, Workload, positions_from_mask

__all__ = [
    "CachedLM",
    "StepOutput",
    "args_choice",
    "args_signal_choice",
    "full_forward",
    "greedy",
    "grow_mask",
]


@dataclass
class StepOutput:
    """One cached forward's logits [B,q,V], and Otter's signal [B,q,V] (None for other models)."""

    logits: torch.Tensor
    signal: torch.Tensor | None = None


class CachedLM:
    """One causal LM (a transformers model or an Otter model) decoded over a batch with its own KV cache.

    The prompt is prefilled uncompiled; every later step goes through the arm's engine (see backends/step.py).
    """

    def __init__(self, model: Any, role: str, tally: Tally, engine: Engine = EAGER) -> None:
        self.model = model
        self.role = role  # the key counted in Tally.calls
        self.tally = tally
        self.engine = engine
        self.cache: Any = None
        self.mask: KVMask | None = None

    def start(self, batch: Batch, all_positions: bool = False) -> StepOutput:
        """Prefill the prompt; returns the model output at the last position (logits [B,1,V], and .signal for
        Otter), or at every prompt position ([B,P,V]) with `all_positions`."""
        self.cache = self.engine.new_cache(self.model, batch.input_ids.shape[0])
        self.mask = self.engine.new_mask(batch.attention_mask)
        self.tally.call(self.role)
        keep = 0 if all_positions else 1
        return StepOutput(
            *lm_step(self.model, batch.input_ids, self.mask.fed, batch.position_ids, self.cache, keep)
        )

    def feed(self, tokens: torch.Tensor) -> StepOutput:
        """Append `tokens` [B,1] and run one cached step; returns the model output for that position."""
        self.mask.grow()
        self.tally.call(self.role)
        step = self.engine.step(
            lm_step, self.model, tokens, self.mask.tensor, self.mask.positions(1), self.cache
        )
        return StepOutput(*step)


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


def args_signal_choice(logits: torch.Tensor, signal: torch.Tensor, workload: Workload) -> torch.Tensor:
    """otter-args: the ARGS decision with Otter's signal [B,V] as the reward of every candidate: tokens [B,1]."""
    token, _ = args_choice(
        logits, workload.k, workload.weight, lambda candidates: signal.gather(1, candidates)
    )
    return token


def args_forced_choice(
    logits: torch.Tensor, signal: torch.Tensor, workload: Workload, candidates: torch.Tensor
) -> torch.Tensor:
    """The ARGS decision at teacher-forced steps over the teacher's candidates [b,N,k] (logits and signal
    [b,N,V]), the signal as reward: tokens [b,N] (distillation's agreement)."""
    scores = logits.gather(-1, candidates) + workload.weight * signal.gather(-1, candidates)
    return candidates.gather(-1, scores.argmax(dim=-1, keepdim=True)).squeeze(-1)


def greedy(logits: torch.Tensor) -> torch.Tensor:
    """Greedy next tokens [B,1] from last-position scores [B,V]."""
    return logits.argmax(dim=-1, keepdim=True)
