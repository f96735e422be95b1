"""The `base` arm: the LLM alone, greedy with its KV cache (the reference every extra cost is measured from)."""

from __future__ import annotations

from typing import Any

import torch

from otterbench.arms.base import Arm, StepObserver, Tally
from otterbench.arms.decoding import CachedLM, greedy
from otterbench.workload import Batch, Workload


class BaseArm(Arm):
    """One cached LLM forward per token, greedy."""

    name = "base"

    def __init__(self, llm: Any) -> None:
        self.llm = llm

    def generate_batch(
        self, batch: Batch, workload: Workload, observer: StepObserver, tally: Tally
    ) -> torch.Tensor:
        lm = CachedLM(self.llm, "llm", tally, self.engine)
        tokens = [greedy(lm.start(batch).logits[:, -1])]
        observer.end_step()
        for _ in range(workload.max_new_tokens - 1):
            tokens.append(greedy(lm.feed(tokens[-1]).logits[:, -1]))
            observer.end_step()
        return torch.cat(tokens, dim=1)
