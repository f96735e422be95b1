"""The DExperts arms with separate expert and anti-expert models: `logits + alpha*(expert - anti)`, greedy.

- `dexperts-faithful` follows the DExperts reference as the project specifies it: no KV cache, three full
  forwards (base, expert, anti-expert) over the whole sequence so far at every step.
- `dexperts-cached` makes the same decisions with each model keeping its own KV cache.
"""

from __future__ import annotations

from typing import Any

import torch

from otterbench.arms.base import Arm, StepObserver, Tally
from otterbench.arms.decoding import CachedLM, full_forward, greedy, grow_mask
from otterbench.run.workload import Batch, Workload

ROLES = ("llm", "expert", "anti_expert")


def steer(base: torch.Tensor, expert: torch.Tensor, anti: torch.Tensor, alpha: float) -> torch.Tensor:
    """DExperts ensemble of last-position logits [B,V]: base + alpha*(expert - anti), in float32."""
    return base.float() + alpha * (expert.float() - anti.float())


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
            token = greedy(steer(*logits, workload.alpha))
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
            tokens.append(greedy(steer(*(out.logits[:, -1] for out in outs), workload.alpha)))
            observer.end_step()
        return torch.cat(tokens, dim=1)
