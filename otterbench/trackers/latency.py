"""Per-step latency: time to first token per batch and time per output token, with one device sync.

On CUDA every mark is a `torch.cuda.Event` recorded on the current stream and the host waits only once, at
exit: a sync per step would stall the launch queue and inflate the very steps being measured. On CPU the
marks are `time.perf_counter` readings. `total_s` is wall time with the device synchronised at both ends.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal, Protocol, runtime_checkable

import torch


@runtime_checkable
class StepObserver(Protocol):
    """What generation code calls: `start_batch()` before a batch's prefill, `end_step()` after each token."""

    def start_batch(self) -> None:
        """Mark the start of a batch (before its prefill)."""

    def end_step(self) -> None:
        """Mark the end of one generated-token step."""


class NullObserver:
    """A `StepObserver` that records nothing (generation without timing)."""

    def start_batch(self) -> None:
        """Do nothing."""

    def end_step(self) -> None:
        """Do nothing."""


@dataclass
class LatencyRecord:
    """Step timings in seconds: one `ttft_s` per batch (prefill + first token), `tpot_s` for later steps."""

    ttft_s: list[float]
    tpot_s: list[float]
    total_s: float
    steps: int
    method: Literal["cuda_events", "perf_counter"]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        return dataclasses.asdict(self)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StepTimer:
    """Context manager timing batches and token steps; `record()` after exit gives a `LatencyRecord`."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.method: Literal["cuda_events", "perf_counter"] = (
            "cuda_events" if device.type == "cuda" else "perf_counter"
        )
        # (kind, mark): kind is "batch" or "step"; mark is a CUDA event or a perf_counter reading.
        self._marks: list[tuple[str, Any]] = []
        self._total_s: float | None = None
        self._started = 0.0

    def _mark(self) -> Any:
        if self.method == "perf_counter":
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record(torch.cuda.current_stream(self.device))
        return event

    def start_batch(self) -> None:
        """Mark the start of a batch (before its prefill)."""
        self._marks.append(("batch", self._mark()))

    def end_step(self) -> None:
        """Mark the end of one generated-token step."""
        if not self._marks:
            raise RuntimeError("StepTimer.end_step() called before start_batch(); mark each batch first")
        self._marks.append(("step", self._mark()))

    def __enter__(self) -> StepTimer:
        self._marks.clear()
        self._total_s = None
        _sync(self.device)
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        _sync(self.device)
        self._total_s = time.perf_counter() - self._started

    def _seconds_between(self, earlier: Any, later: Any) -> float:
        if self.method == "perf_counter":
            return later - earlier
        return earlier.elapsed_time(later) / 1000.0  # CUDA events report milliseconds

    def record(self) -> LatencyRecord:
        """The timings of the finished block."""
        if self._total_s is None:
            raise RuntimeError("StepTimer.record() called before the `with` block exited")
        ttft_s: list[float] = []
        tpot_s: list[float] = []
        for (before, earlier), (kind, later) in pairwise(self._marks):
            if kind != "step":
                continue
            # A step right after a batch mark is that batch's first token (prefill included).
            (ttft_s if before == "batch" else tpot_s).append(self._seconds_between(earlier, later))
        return LatencyRecord(
            ttft_s=ttft_s,
            tpot_s=tpot_s,
            total_s=self._total_s,
            steps=len(ttft_s) + len(tpot_s),
            method=self.method,
        )
