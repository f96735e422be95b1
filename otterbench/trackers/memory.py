"""Peak memory per phase (load, prefill, decode, ...) on CPU and GPU, and exact weight bytes.

CPU: peak RSS from VmHWM, reset at each phase start by writing "5" to /proc/self/clear_refs when the
kernel allows it; otherwise getrusage's lifetime peak, so phases are cumulative (said in `notes`).
GPU: torch's allocator peaks (reset at each phase start) and NVML figures sampled at phase start and end.
NVML is sampled, not polled by a thread: a sampler would compete with the timed host thread, and torch's
caching allocator keeps reserved blocks until `empty_cache()`, so the end-of-phase reading holds the
phase's high-water mark unless the code under test empties the cache. Host RSS is recorded on GPU too.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from otterbench.env import (
    NvmlUnavailable,
    open_nvml,
    read_maxrss_bytes,
    read_vm_hwm_bytes,
    reset_rss_peak,
)

MemoryMethod = Literal["nvml", "torch", "rss"]


@dataclass
class PhaseMemory:
    """Peaks of one phase in bytes; None where not measured (never 0 for unknown)."""

    peak_bytes: int | None = None
    torch_allocated_bytes: int | None = None
    torch_reserved_bytes: int | None = None
    nvml_process_bytes: int | None = None
    nvml_device_bytes: int | None = None  # device used minus the baseline taken at tracker creation
    rss_bytes: int | None = None


@dataclass
class MemoryRecord:
    """Peak memory of a tracked block: `peak_bytes` is the `method` figure, max over phases."""

    peak_bytes: int | None
    method: MemoryMethod
    by_phase: dict[str, PhaseMemory]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        return dataclasses.asdict(self)


def weights_bytes(*modules: torch.nn.Module) -> int:
    """Exact bytes of the unique parameters of `modules` (tied or shared tensors once).

    Buffers (RoPE frequencies and the like) are derived state, not weights: they count in measured peaks only.
    """
    seen: set[Any] = set()
    total = 0
    for module in modules:
        for tensor in module.parameters():
            if tensor.device.type == "meta":  # no storage to compare: object identity is all there is
                key: Any = id(tensor)
            else:  # distinct tensor objects viewing one storage region are one weight
                storage = tensor.untyped_storage().data_ptr()
                key = (storage, tensor.storage_offset(), tuple(tensor.shape), tensor.dtype)
            if key not in seen:
                seen.add(key)
                total += tensor.numel() * tensor.element_size()
    return total


def live_models() -> list[dict[str, Any]]:
    """Every transformers model object alive in this process: its class and weight bytes (unique tensors).

    A model nested in another (the LLM inside an Otter wrapper) is listed once, as its own class; the list
    says which models a measured phase holds, independent of how the allocator reports it.
    """
    import gc

    from transformers import PreTrainedModel

    # the type's MRO, not isinstance: isinstance on lazy module proxies among gc's objects warns or imports
    found = [obj for obj in gc.get_objects() if PreTrainedModel in type(obj).__mro__]
    return [{"class": type(model).__name__, "weights_bytes": weights_bytes(model)} for model in found]


class MemoryTracker:
    """Context manager with `phase(name)` sub-blocks; `record()` after exit gives a `MemoryRecord`."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.on_cuda = device.type == "cuda"
        self.notes: list[str] = []
        self.by_phase: dict[str, PhaseMemory] = {}
        self._done = False
        self._in_phase = False
        self.rss_reset, reason = reset_rss_peak()
        if not self.rss_reset:
            self.notes.append(f"host RSS peaks are cumulative across phases: {reason}")
        self._gpu = None
        self._baseline_device_bytes: int | None = None
        if self.on_cuda:
            self._gpu, nvml_reason = open_nvml(device)
            if self._gpu is None:
                self.notes.append(f"NVML figures unknown (None): {nvml_reason}")
            else:
                self._baseline_device_bytes = self._nvml_device_bytes()

    def __enter__(self) -> MemoryTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.by_phase and exc[0] is None:
            self.notes.append("no phase was opened; nothing was measured")
        if self._gpu is not None:
            self._gpu.close()
            self._gpu = None
        self._done = True

    def _nvml_device_bytes(self) -> int | None:
        try:
            return self._gpu.used_bytes() if self._gpu is not None else None
        except NvmlUnavailable as err:
            self._note(f"NVML device memory unknown (None): {err}")
            return None

    def _nvml_process_bytes(self) -> int | None:
        if self._gpu is None:
            return None
        try:
            used, reason = self._gpu.process_bytes(os.getpid())
        except NvmlUnavailable as err:
            used, reason = None, str(err)
        if used is None:
            self._note(f"NVML per-process memory unknown (None): {reason}")
        return used

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def _sample_nvml(self) -> tuple[int | None, int | None]:
        return self._nvml_process_bytes(), self._nvml_device_bytes()

    @contextmanager
    def phase(self, name: str) -> Iterator[PhaseMemory]:
        """Measure the peaks of the enclosed block under `name` (phases do not nest)."""
        if self._in_phase:
            raise RuntimeError(
                f"MemoryTracker.phase({name!r}) opened inside another phase; phases do not nest"
            )
        if name in self.by_phase:
            raise ValueError(f"phase name {name!r} already used; give each phase a distinct name")
        memory = PhaseMemory()
        self.by_phase[name] = memory
        self._in_phase = True
        if self.rss_reset:
            reset_rss_peak()
        if self.on_cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        process_start, device_start = self._sample_nvml()
        try:
            yield memory
        finally:
            self._in_phase = False
            self._finish_phase(memory, process_start, device_start)

    def _finish_phase(self, memory: PhaseMemory, process_start: int | None, device_start: int | None) -> None:
        memory.rss_bytes = read_vm_hwm_bytes() if self.rss_reset else read_maxrss_bytes()
        if self.on_cuda:
            torch.cuda.synchronize(self.device)
            memory.torch_allocated_bytes = torch.cuda.max_memory_allocated(self.device)
            memory.torch_reserved_bytes = torch.cuda.max_memory_reserved(self.device)
            process_end, device_end = self._sample_nvml()
            memory.nvml_process_bytes = _max_known(process_start, process_end)
            device_used = _max_known(device_start, device_end)
            if device_used is not None and self._baseline_device_bytes is not None:
                memory.nvml_device_bytes = device_used - self._baseline_device_bytes
        memory.peak_bytes = _phase_peak(memory, self.method)

    @property
    def method(self) -> MemoryMethod:
        """Which figure `peak_bytes` reports: NVML per-process when attributable, else torch, else RSS."""
        if not self.on_cuda:
            return "rss"
        if self.by_phase and all(m.nvml_process_bytes is not None for m in self.by_phase.values()):
            return "nvml"
        return "torch"

    def record(self) -> MemoryRecord:
        """The per-phase peaks of the finished block."""
        if not self._done:
            raise RuntimeError("MemoryTracker.record() called before the `with` block exited")
        method = self.method
        for memory in self.by_phase.values():
            memory.peak_bytes = _phase_peak(memory, method)
        notes = list(self.notes)
        if method == "torch":
            notes.append("peak_bytes is torch's max_memory_reserved (excludes the CUDA context)")
        peaks = [m.peak_bytes for m in self.by_phase.values() if m.peak_bytes is not None]
        return MemoryRecord(
            peak_bytes=max(peaks) if peaks else None, method=method, by_phase=self.by_phase, notes=notes
        )


def _max_known(*values: int | None) -> int | None:
    known = [value for value in values if value is not None]
    return max(known) if known else None


def _phase_peak(memory: PhaseMemory, method: MemoryMethod) -> int | None:
    return {
        "nvml": memory.nvml_process_bytes,
        "torch": memory.torch_reserved_bytes,
        "rss": memory.rss_bytes,
    }[method]
