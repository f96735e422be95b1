"""What every arm shares: the step observer the harness times with, the output record, the run loop."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import torch

from otterbench.arms.engine import EAGER, Engine
from otterbench.run.workload import Batch, Workload
from otterbench.trackers.latency import NullObserver, StepObserver

CALL_KEYS = ("llm", "reward_model", "token_reward_model", "expert", "anti_expert", "draft", "otter")


@dataclass
class ArmOutput:
    """What one arm produced on a workload, with the work it took to produce it."""

    token_ids: list[list[int]]  # N new tokens per prompt, in workload prompt order
    calls: dict[str, int]  # forward calls per model, keys CALL_KEYS
    rows_scored: int  # sequences the separate model(s) evaluated (see docs/arms.md)
    new_tokens: int  # tokens generated in all
    speculation: dict[str, Any] | None = None  # speculative arms: draft counters (SpeculationCounts.to_dict)


@dataclass
class Tally:
    """Running counts of one arm run."""

    calls: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CALL_KEYS, 0))
    rows_scored: int = 0

    def call(self, model: str, rows_scored: int = 0) -> None:
        self.calls[model] += 1
        self.rows_scored += rows_scored


class Arm(ABC):
    """One decoding strategy: greedy, exactly N new tokens per prompt, left-padded batches."""

    name: str
    vocab_size: int | None = None  # the decoding model's vocabulary, set by build_arm
    engine: Engine = EAGER  # how its models' decode steps run (arms/engine.py), set by build_arm
    not_static: str | None = None  # why this arm's decode step has no static shapes (then it runs eager)

    def run(
        self, workload: Workload, device: torch.device | str, observer: StepObserver | None = None
    ) -> ArmOutput:
        """Decode every batch of `workload` on `device`, telling `observer` about each batch and step."""
        observer = observer or NullObserver()
        self.check(workload)
        tally = Tally()
        self.engine.begin(workload)
        token_ids: list[list[int]] = []
        with torch.inference_mode():
            for batch in workload.batches(device):
                observer.start_batch()
                new = self.generate_batch(batch, workload, observer, tally)  # [B, N]
                token_ids.extend(new.tolist())
        new_tokens = sum(len(row) for row in token_ids)
        return ArmOutput(token_ids, tally.calls, tally.rows_scored, new_tokens)

    def check(self, workload: Workload) -> None:
        """Refuse a workload this arm's models cannot serve."""
        vocab = self.vocab_size
        if vocab is not None and workload.vocab_size > vocab:
            raise ValueError(
                f"workload vocab_size={workload.vocab_size} exceeds arm {self.name}'s model vocabulary {vocab}: "
                "build the workload with the models' own tokenizer"
            )

    @abstractmethod
    def generate_batch(
        self, batch: Batch, workload: Workload, observer: StepObserver, tally: Tally
    ) -> torch.Tensor:
        """Generate exactly workload.max_new_tokens tokens for each row of `batch`: [B, N] long."""
