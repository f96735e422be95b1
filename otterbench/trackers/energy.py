"""GPU energy of a block from NVML's total-energy counter (millijoules), device synchronised at both ends.

The counter is device-wide: it includes every process on the GPU, so check `other_gpu_processes` first.
On CPU, or on a GPU without the counter (pre-Volta, MIG slices), the record says unsupported and energy None.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from otterbench.env import NvmlGpu, NvmlUnavailable, open_nvml


@dataclass
class EnergyRecord:
    """Energy of the tracked block in joules; None (never 0) when it could not be measured."""

    energy_j: float | None
    supported: bool
    note: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        return dataclasses.asdict(self)


class EnergyTracker:
    """Context manager reading the GPU energy counter on entry and exit; `record()` after exit."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._gpu: NvmlGpu | None = None
        self._start_mj: int | None = None
        self._record: EnergyRecord | None = None
        self._reason = ""

    def __enter__(self) -> EnergyTracker:
        self._record = None
        if self.device.type != "cuda":
            self._reason = "device is CPU; NVML reports GPU energy only"
            return self
        self._gpu, self._reason = open_nvml(self.device)
        if self._gpu is not None:
            torch.cuda.synchronize(self.device)
            try:
                self._start_mj = self._gpu.energy_mj()
            except NvmlUnavailable as err:
                self._reason = f"no total-energy counter on this GPU ({err})"
                self._close()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._gpu is None or self._start_mj is None:
            self._record = EnergyRecord(energy_j=None, supported=False, note=self._reason)
            return
        torch.cuda.synchronize(self.device)
        try:
            used_mj = self._gpu.energy_mj() - self._start_mj
            self._record = EnergyRecord(
                energy_j=used_mj / 1000.0,
                supported=True,
                note="NVML total-energy counter difference; device-wide (includes other processes)",
            )
        except NvmlUnavailable as err:
            self._record = EnergyRecord(energy_j=None, supported=False, note=f"energy read failed: {err}")
        finally:
            self._close()

    def _close(self) -> None:
        if self._gpu is not None:
            self._gpu.close()
        self._gpu, self._start_mj = None, None

    def record(self) -> EnergyRecord:
        """The energy of the finished block."""
        if self._record is None:
            raise RuntimeError("EnergyTracker.record() called before the `with` block exited")
        return self._record
