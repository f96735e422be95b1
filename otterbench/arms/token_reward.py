"""The `args-token` arm: ARGS with a separate token-level reward model (the GenARM / autoregressive-RM design).

The separate model is a causal LM of the reward model's size whose next-token output is read as a reward for
every vocabulary entry: one cached forward per step scores all candidates at once, so the step costs one LLM
forward plus one reward-model forward of one position per prompt, with no k-row expansion. The decision is
`argmax(logit + w*reward[candidate])` over the LLM's top-k, exactly as otter-args decides with its signal.
This is the strongest separate-model design: against it, Otter's saving is what *inserting* saves, with
"predict every candidate in one pass" already granted to the baseline.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch

from otterbench.arms.base import Arm, StepObserver, Tally
from otterbench.arms.decoding import CachedLM, args_choice
from otterbench.workload import Batch, Workload


class TokenRewardArm(Arm):
    """LLM + token-level reward model, each with its own KV cache; one forward of each per token."""

    name = "args-token"

    def __init__(self, llm: Any, token_reward_model: Any) -> None:
        self.llm = llm
        self.token_reward_model = token_reward_model

    def generate_batch(
        self, batch: Batch, workload: Workload, observer: StepObserver, tally: Tally
    ) -> torch.Tensor:
        lm = CachedLM(self.llm, "llm", tally, self.engine)
        scorer = CachedLM(self.token_reward_model, "token_reward_model", tally, self.engine)
        rows = batch.input_ids.shape[0]
        tokens: list[torch.Tensor] = []
        for step in range(workload.max_new_tokens):
            out, scored = (
                (lm.feed(tokens[-1]), scorer.feed(tokens[-1]))
                if step
                else (lm.start(batch), scorer.start(batch))
            )
            rewards = scored.logits[:, -1]  # [B,V]: the reward of every possible next token
            tally.rows_scored += rows  # one row per prompt scores all k candidates
            token, _ = args_choice(
                out.logits[:, -1], workload.k, workload.weight, partial(torch.gather, rewards, 1)
            )
            tokens.append(token)
            observer.end_step()
        return torch.cat(tokens, dim=1)
