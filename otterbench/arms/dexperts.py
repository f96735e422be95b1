"""The DExperts arms with separate expert and anti-expert models: `filter_p(logits) + alpha*(expert - anti)`, greedy.

As in the DExperts reference, the base logits are nucleus-filtered first (top-p `filter_p`, 0.9 by default):
tokens outside the base model's nucleus get -inf, so the experts can only re-rank the base's plausible tokens.

- `dexperts-faithful` follows the DExperts reference as the project specifies it: no KV cache, three full
  forwards (base, expert, anti-expert) over the whole sequence so far at every step.
- `dexperts-cached` makes the same decisions with each model keeping its own KV cache.
"""

from __future__ import annotations

from typing import Any

import torch

from otterbench.arms.base import Arm, StepObserver, Tally
from otterbench.arms.decoding import CachedLM, full_forward, greedy, grow_mask
from otterbench.workload import Batch, Workload

ROLES = ("llm", "expert", "anti_expert")


def nucleus_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """`logits` [...,V] in float32 with every token outside the top-p nucleus set to -inf (top_p >= 1: unchanged).

    The nucleus is the smallest set of most-probable tokens whose probability reaches `top_p`: a token is
    kept when the probability of the tokens ranked above it is at most `top_p` (the first is always kept).
    """
    logits = logits.float()
    if top_p >= 1.0:
        return logits
    ranked, order = logits.sort(dim=-1, descending=True)
    reached = ranked.softmax(dim=-1).cumsum(dim=-1) > top_p  # [B,V] in rank order
    # a token is dropped when the tokens ranked *above* it already passed top_p: shift right by one
    dropped = torch.cat([torch.zeros_like(reached[..., :1]), reached[..., :-1]], dim=-1)
    return logits.masked_fill(dropped.scatter(-1, order, dropped), float("-inf"))


def steer(
    base: torch.Tensor, expert: torch.Tensor, anti: torch.Tensor, alpha: float, filter_p: float
) -> torch.Tensor:
    """DExperts ensemble of last-position logits [B,V]: nucleus(base) + alpha*(expert - anti), in float32."""
    return nucleus_filter(base, filter_p) + alpha * (expert.float() - anti.float())


def shift_signal_choice(logits: torch.Tensor, signal: torch.Tensor, workload: Workload) -> torch.Tensor:
    """otter-dexperts: the DExperts decision with Otter's signal [B,V] standing for `expert - anti`: [B,1]."""
    return greedy(nucleus_filter(logits, workload.filter_p) + workload.alpha * signal.float())


def shift_forced_choice(
    logits: torch.Tensor, signal: torch.Tensor, workload: Workload, candidates: torch.Tensor
) -> torch.Tensor:
    """The DExperts decision at teacher-forced steps (logits and signal [b,N,V]; candidates unused): [b,N]."""
    return (nucleus_filter(logits, workload.filter_p) + workload.alpha * signal).argmax(dim=-1)


class DExpertsFaithfulArm(Arm):
    """Three uncached forwards over the whole sequence per token."""

    name = "dexperts-faithful"
    not_static = (
        "it re-reads the whole growing sequence every step (no KV cache), so no decode shape is static"
    )

    def __init__(self, llm: Any, expert: Any, anti_expert: Any) -> None:
        self.models = dict(zip(ROLES, (llm, expert, anti_expert)))

    def generate_batch(
        self, batch: Batch, workload: Workload, observer: StepObserver, tally: Tally
    ) -> torch.Tensor:
        input_ids, mask = batch.input_ids, batch.attention_mask
        batch_rows = input_ids.shape[0]
        for _ in range(workload.max_new_tokens):
            logits = []
            for role, model in self.models.items():
                logits.append(full_forward(model, input_ids, mask))
                tally.call(role, rows_scored=batch_rows if role != "llm" else 0)
            token = greedy(steer(*logits, workload.alpha, workload.filter_p))
            input_ids, mask = torch.cat([input_ids, token], dim=1), grow_mask(mask)
            observer.end_step()
        return input_ids[:, batch.input_ids.shape[1] :]


class DExpertsCachedArm(Arm):
    """The same three models, each decoded with its own KV cache."""

    name = "dexperts-cached"

    def __init__(self, llm: Any, expert: Any, anti_expert: Any) -> None:
        self.models = dict(zip(ROLES, (llm, expert, anti_expert)))

    def generate_batch(
        self, batch: Batch, workload: Workload, observer: StepObserver, tally: Tally
    ) -> torch.Tensor:
        lms = [CachedLM(model, role, tally, self.engine) for role, model in self.models.items()]
        batch_rows = batch.input_ids.shape[0]
        tokens: list[torch.Tensor] = []
        for step in range(workload.max_new_tokens):
            outs = [lm.feed(tokens[-1]) if step else lm.start(batch) for lm in lms]
            tally.rows_scored += 2 * batch_rows  # expert and anti-expert rows
            tokens.append(
                greedy(steer(*(out.logits[:, -1] for out in outs), workload.alpha, workload.filter_p))
            )
            observer.end_step()
        return torch.cat(tokens, dim=1)
