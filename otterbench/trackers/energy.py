"""Energy of a block: on a GPU from NVML's total-energy counter (millijoules), device synchronised at both
ends; on a CPU from the RAPL package counters Linux exposes under /sys/class/powercap (microjoules).

Both counters are device-wide: a GPU's includes every process on it (check `other_gpu_processes` first), a
CPU package's every process and core on the package. Where neither can be read (a GPU without the counter:
pre-Volta, MIG slices; a CPU without RAPL, or whose counters only root may read) the record says unsupported,
why, and energy None.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from otterbench.env import (
    POWERCAP,
    NvmlGpu,
    NvmlUnavailable,
    RaplPackages,
    RaplUnavailable,
    open_nvml,
    open_rapl,
)


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
    """Context manager reading the device's energy counter on entry and exit; `record()` after exit."""

    def __init__(self, device: torch.device, powercap: Path = POWERCAP) -> None:
        self.device, self.powercap = device, powercap
        self._gpu: NvmlGpu | None = None
        self._start_mj: int | None = None
        self._rapl: RaplPackages | None = None
        self._start_uj: list[int] | None = None
        self._record: EnergyRecord | None = None
        self._reason = ""

    def __enter__(self) -> EnergyTracker:
        self._record = None
        if self.device.type != "cuda":
            self._rapl, self._reason = open_rapl(self.powercap)
            if self._rapl is not None:
                try:
                    self._start_uj = self._rapl.read_uj()
                except RaplUnavailable as err:
                    self._reason, self._rapl = f"RAPL read failed: {err}", None
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
        if self._rapl is not None and self._start_uj is not None:
            self._record = self._cpu_record(self._rapl, self._start_uj)
            self._rapl, self._start_uj = None, None
            return
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

    @staticmethod
    def _cpu_record(rapl: RaplPackages, start_uj: list[int]) -> EnergyRecord:
        try:
            joules = rapl.joules_between(start_uj, rapl.read_uj())
        except RaplUnavailable as err:
            return EnergyRecord(energy_j=None, supported=False, note=f"RAPL read failed: {err}")
        return EnergyRecord(
            energy_j=joules,
            supported=True,
            note=f"RAPL package energy counter difference ({len(rapl.zones)} package(s)); package-wide "
            "(includes every process and core on the package)",
        )

    def _close(self) -> None:
        if self._gpu is not None:
            self._gpu.close()
        self._gpu, self._start_mj = None, None

    def record(self) -> EnergyRecord:
        """The energy of the finished block."""
        if self._record is None:
            raise RuntimeError("EnergyTracker.record() called before the `with` block exited")
        return self._record
