"""The Otter arms: one forward of the inserted model gives the base logits and the signal together.

- `otter-args`: top-k on `.logits`, score `logit + w*signal[candidate]` over the same top-k, greedy.
- `otter-dexperts`: `nucleus(logits, filter_p) + alpha*signal`, greedy (the DExperts arms' filter).
Both need a vocab-sized signal (OtterSpec.signal="vocab"): one value per possible next token.
"""

from __future__ import annotations

from typing import Any

import torch

from otterbench.arms.base import Arm, StepObserver, Tally
from otterbench.arms.decoding import CachedLM, args_choice, greedy
from otterbench.arms.dexperts import nucleus_filter
from otterbench.run.workload import Batch, Workload


class OtterArm(Arm):
    """One cached Otter forward per token; the decision rule depends on the task."""

    def __init__(self, name: str, otter: Any) -> None:
        self.name = name
        self.otter = otter

    def decide(self, out: Any, workload: Workload) -> torch.Tensor:
        """Next tokens [B,1] from one Otter output."""
        logits, signal = out.logits[:, -1], out.signal[:, -1]  # [B,V] each
        if self.name == "otter-args":
            token, _ = args_choice(logits, workload.k, workload.weight, lambda cand: signal.gather(1, cand))
            return token
        return greedy(nucleus_filter(logits, workload.filter_p) + workload.alpha * signal.float())

    def generate_batch(
        self, batch: Batch, workload: Workload, observer: StepObserver, tally: Tally
    ) -> torch.Tensor:
        lm = CachedLM(self.otter, "otter", tally, self.engine)
        tokens = [self.decide(lm.start(batch), workload)]
        observer.end_step()
        for _ in range(workload.max_new_tokens - 1):
            tokens.append(self.decide(lm.feed(tokens[-1]), workload))
            observer.end_step()
        return torch.cat(tokens, dim=1)
