"""The Otter arms: one forward of the inserted model gives the base logits and the signal together.

The decision is the task's rule, shared with the separate arms of the task and handed in by the arm's spec
(otterbench/arms/units/): `otter-args` scores `logit + w*signal[candidate]` over the same top-k
(decoding.py::args_signal_choice), `otter-dexperts` takes `nucleus(logits, filter_p) + alpha*signal`
(dexperts.py::shift_signal_choice). Both need a vocab-sized signal (OtterSpec.signal="vocab").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from otterbench.arms.base import Arm, StepObserver, Tally
from otterbench.arms.decoding import CachedLM
from otterbench.workload import Batch, Workload

# (logits [B,V], signal [B,V], workload) -> next tokens [B,1]
Choice = Callable[[torch.Tensor, torch.Tensor, Workload], torch.Tensor]


class OtterArm(Arm):
    """One cached Otter forward per token, decided by its task's rule."""

    def __init__(self, name: str, otter: Any, choose: Choice) -> None:
        self.name = name
        self.otter = otter
        self.choose = choose

    def decide(self, out: Any, workload: Workload) -> torch.Tensor:
        """Next tokens [B,1] from one Otter output."""
        return self.choose(out.logits[:, -1], out.signal[:, -1], workload)

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
