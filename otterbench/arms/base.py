"""What every arm shares: the step observer the harness times with, the output record, the run loop."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import torch

from otterbench.backends.step import EAGER, Engine, warm_up_engine
from otterbench.knobs import Knob, knob_problems
from otterbench.models.roles import OTTER_ROLE, role_names
from otterbench.trackers.latency import LatencyRecord, NullObserver, StepObserver
from otterbench.workload import Batch, Workload


def call_keys() -> tuple[str, ...]:
    """The forward-call counters of an arm: the LLM ("llm"), every other model role, and Otter."""
    return ("llm", *(role for role in role_names() if role != "base"), OTTER_ROLE)


@dataclass
class ArmOutput:
    """What one arm produced on a workload, with the work it took to produce it."""

    token_ids: list[list[int]]  # N new tokens per prompt, in workload prompt order
    calls: dict[str, int]  # forward calls per model, keys call_keys()
    rows_scored: int  # sequences the separate model(s) evaluated (see docs/arms.md)
    new_tokens: int  # tokens generated in all
    speculation: dict[str, Any] | None = None  # speculative arms: draft counters (SpeculationCounts.to_dict)
    latency: LatencyRecord | None = (
        None  # timings a generate-level backend took itself (None: the observer's)
    )
    # memory as a generate-level backend accounts it (e.g. vLLM's weights and KV-cache bytes): results.json's
    # memory.engine
    engine_memory: dict[str, Any] = field(default_factory=dict)


@dataclass
class Tally:
    """Running counts of one arm run."""

    calls: dict[str, int] = field(default_factory=lambda: dict.fromkeys(call_keys(), 0))
    rows_scored: int = 0

    def call(self, model: str, rows_scored: int = 0) -> None:
        self.calls[model] += 1
        self.rows_scored += rows_scored


class Arm(ABC):
    """One decoding strategy: greedy, exactly N new tokens per prompt, left-padded batches."""

    name: str
    vocab_size: int | None = None  # the decoding model's vocabulary, set by build_arm
    engine: Engine = EAGER  # how its models' decode steps run (backends/step.py), set by build_arm
    not_static: str | None = None  # why this arm's decode step has no static shapes (then it runs eager)
    knobs: tuple[Knob, ...] = ()  # the task knobs it reads, checked before every run (set by build_arm)

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

    def warm_up(self, workload: Workload, device: torch.device) -> dict[str, Any]:
        """Compile (under the compiled backend) before anything is measured; the record's engine fields."""
        return warm_up_engine(self, workload, device)

    def close(self) -> None:  # noqa: B027 — a hook: step-level arms hold nothing beyond their models
        """Release what the arm holds beyond its models (a generate-level backend's engine; nothing here)."""

    def check(self, workload: Workload) -> None:
        """Refuse a workload this arm's models cannot serve, or whose knobs are out of bounds."""
        problems = knob_problems(
            {knob.name: knob for knob in self.knobs}, workload.knobs, workload.vocab_size
        )
        if problems:
            raise ValueError(problems[0])
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
