"""The one switch between CPU and GPU: device/dtype parsing, NVML access, capability probe, environment.

Everything that touches CUDA or NVML for measurement goes through here, so a CPU-only machine takes the
fallback path everywhere. `pynvml` (package nvidia-ml-py) is imported only inside `NvmlGpu`.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import re
import resource
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from otterbench.provenance import source_state

PROC_STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
# Linux's RAPL energy counters (Intel, and AMD Zen through the same driver)
POWERCAP = Path("/sys/class/powercap")


def resolve_device(spec: str) -> torch.device:
    """The torch device for `spec`: "auto" (cuda:0 when available, else cpu), "cpu", "cuda" or "cuda:N"."""
    text = spec.strip().lower()
    if text == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if match is None:
        raise ValueError(f"device={spec!r} is not a device; use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise ValueError(f"device={spec!r} but CUDA is not available here; use --device cpu or auto")
    index = int(match.group(1) or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise ValueError(
            f"device={spec!r} but only {count} CUDA device(s) exist; use cuda:0..cuda:{count - 1}"
        )
    return torch.device("cuda", index)


def device_memory_bytes(device: torch.device, every_gpu: bool = False) -> int:
    """All the memory `device` has (with `every_gpu`, all visible GPUs: a device_map spreads a model)."""
    if device.type == "cuda":
        indices = range(torch.cuda.device_count()) if every_gpu else [device]
        return sum(int(torch.cuda.get_device_properties(index).total_memory) for index in indices)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


class NvmlUnavailable(RuntimeError):
    """NVML cannot answer this question here; the message says why."""


class NvmlGpu:
    """One CUDA device seen through NVML; every NVML failure surfaces as `NvmlUnavailable`."""

    def __init__(self, device: torch.device) -> None:
        if device.type != "cuda":
            raise NvmlUnavailable(f"device {device} is not a CUDA device")
        try:
            import pynvml
        except ImportError as err:
            raise NvmlUnavailable("pynvml (package nvidia-ml-py) is not installed") from err
        self._nvml = pynvml
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as err:
            raise NvmlUnavailable(f"nvmlInit failed: {err}") from err
        try:
            self.handle = self._find_handle(device)
        except NvmlUnavailable:
            pynvml.nvmlShutdown()
            raise

    def _call(self, name: str, *args: Any) -> Any:
        try:
            return getattr(self._nvml, name)(*args)
        except self._nvml.NVMLError as err:
            raise NvmlUnavailable(f"{name} failed: {err}") from err

    def _find_handle(self, device: torch.device) -> Any:
        # torch numbers devices after CUDA_VISIBLE_DEVICES; NVML numbers all of them, so match by UUID.
        index = device.index or 0
        uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
        for prefix in ("GPU-", "MIG-"):
            if uuid is None:
                break
            try:
                return self._nvml.nvmlDeviceGetHandleByUUID(f"{prefix}{uuid}")
            except self._nvml.NVMLError:
                continue
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")
        if index < len(visible) and visible[index].strip().isdigit():
            index = int(visible[index])
        return self._call("nvmlDeviceGetHandleByIndex", index)

    def name(self) -> str:
        """The GPU's product name."""
        name = self._call("nvmlDeviceGetName", self.handle)
        return name.decode() if isinstance(name, bytes) else name

    def driver(self) -> str:
        """The NVIDIA driver version."""
        version = self._call("nvmlSystemGetDriverVersion")
        return version.decode() if isinstance(version, bytes) else version

    def used_bytes(self) -> int:
        """Device-wide used memory (all processes, plus the driver's own reservations)."""
        return int(self._call("nvmlDeviceGetMemoryInfo", self.handle).used)

    def processes(self) -> list[dict[str, Any]]:
        """Compute and graphics processes on this GPU: pid and used_bytes (None when NVML cannot say)."""
        seen: dict[int, int | None] = {}
        for kind in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
            for proc in self._call(kind, self.handle):
                seen.setdefault(int(proc.pid), proc.usedGpuMemory)
        return [{"pid": pid, "used_bytes": used} for pid, used in sorted(seen.items())]

    def process_bytes(self, pid: int) -> tuple[int | None, str]:
        """Memory NVML attributes to `pid`, or None with the reason it cannot."""
        for proc in self.processes():
            if proc["pid"] == pid:
                if proc["used_bytes"] is None:
                    return None, "NVML lists this process but reports no per-process memory for it"
                return int(proc["used_bytes"]), ""
        return None, (
            f"NVML does not list this process (pid {pid}) among the GPU's processes "
            "(a container PID namespace, or no CUDA context yet)"
        )

    def energy_mj(self) -> int:
        """The GPU's total-energy counter in millijoules since the driver loaded."""
        return int(self._call("nvmlDeviceGetTotalEnergyConsumption", self.handle))

    def close(self) -> None:
        """Release this NVML session (NVML counts init/shutdown pairs)."""
        try:
            self._nvml.nvmlShutdown()
        except self._nvml.NVMLError:
            pass


def open_nvml(device: torch.device) -> tuple[NvmlGpu | None, str]:
    """An NVML session for `device`, or None with the reason NVML is unavailable."""
    try:
        return NvmlGpu(device), ""
    except NvmlUnavailable as err:
        return None, str(err)


class RaplUnavailable(RuntimeError):
    """A RAPL energy counter could not be read."""


@dataclass(frozen=True)
class RaplPackages:
    """The CPU's RAPL package-energy counters: each top-level powercap zone `intel-rapl:N` named package-N
    (sub-zones such as core and dram lie inside a package, psys spans more than the CPU, and the MMIO copies of
    the package zones count the same energy again: all left out). Each counter is package-wide: it counts
    every process on the package, in microjoules, and wraps at its `max_energy_range_uj`. One wrap within a
    block is counted; a second cannot be seen from two reads (a range of ~65 kJ on AMD Zen is several minutes
    at full package power, longer than any measured repeat of the CPU workloads here)."""

    zones: tuple[Path, ...]

    def read_uj(self) -> list[int]:
        """Every package's counter now, in microjoules."""
        try:
            return [int((zone / "energy_uj").read_text()) for zone in self.zones]
        except (OSError, ValueError) as err:
            raise RaplUnavailable(str(err)) from err

    def joules_between(self, start: list[int], end: list[int]) -> float:
        """The energy counted from `start` to `end` (two `read_uj`), a counter that wrapped once included."""
        total = 0
        for zone, first, last in zip(self.zones, start, end):
            if last < first:
                try:
                    last += int((zone / "max_energy_range_uj").read_text())
                except (OSError, ValueError) as err:
                    raise RaplUnavailable(f"{zone.name} wrapped and its range is unreadable: {err}") from err
            total += last - first
        return total / 1e6


def open_rapl(root: Path = POWERCAP) -> tuple[RaplPackages | None, str]:
    """The RAPL package counters under `root` when this process can read them, else (None, why)."""
    zones = []
    for zone in sorted(root.glob("intel-rapl:*")):
        try:
            named_package = (zone / "name").read_text().strip().startswith("package")
        except OSError:
            continue
        if re.fullmatch(r"intel-rapl:\d+", zone.name) and named_package:
            zones.append(zone)
    if not zones:
        return (
            None,
            f"no RAPL package counter under {root} (not Linux, or no powercap RAPL driver for this CPU)",
        )
    rapl = RaplPackages(tuple(zones))
    try:
        rapl.read_uj()
    except RaplUnavailable as err:
        return (
            None,
            f"RAPL counters under {root} are not readable here ({err}); since Linux 5.10 only root may",
        )
    return rapl, ""


def _nvml_library_status() -> str:
    try:
        import pynvml
    except ImportError:
        return "pynvml (package nvidia-ml-py) is not installed"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as err:
        return f"nvmlInit failed: {err}"
    pynvml.nvmlShutdown()
    return "the NVML library loads"


def _ensure_cuda_context(device: torch.device) -> None:
    # NVML lists a process only once it holds a CUDA context; a one-element tensor creates it.
    torch.zeros(1, device=device)
    torch.cuda.synchronize(device)


@dataclass
class Capabilities:
    """What the trackers can measure on this device; each `*_reason` says why not ("" when it can)."""

    device: str
    cuda_available: bool
    gpu_name: str | None
    nvml_available: bool
    nvml_reason: str
    nvml_process_memory: bool
    nvml_process_memory_reason: str
    energy_counter: bool
    energy_reason: str
    torch_memory_stats: bool
    rss_method: str
    rss_phase_reset: bool
    rss_phase_reset_reason: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        return dataclasses.asdict(self)


def reset_rss_peak() -> tuple[bool, str]:
    """Reset this process's peak RSS (VmHWM) via /proc/self/clear_refs; (False, why) when refused."""
    if not PROC_STATUS.exists():
        return False, "/proc/self/status is absent (not Linux); peak RSS comes from getrusage"
    try:
        CLEAR_REFS.write_text("5")
    except OSError as err:
        return False, f"cannot write /proc/self/clear_refs ({err.strerror}); peaks are cumulative"
    return True, ""


def read_vm_hwm_bytes() -> int | None:
    """This process's peak resident set size (VmHWM) in bytes, or None without /proc."""
    try:
        match = re.search(r"^VmHWM:\s+(\d+)\s+kB", PROC_STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) * 1024 if match else None


def read_maxrss_bytes() -> int:
    """This process's lifetime peak RSS from getrusage, in bytes (Linux reports kB, macOS bytes)."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(maxrss) if sys.platform == "darwin" else int(maxrss) * 1024


def _probe_nvml(device: torch.device, caps: Capabilities) -> None:
    gpu, caps.nvml_reason = open_nvml(device)
    caps.nvml_available = gpu is not None
    if gpu is None:
        caps.nvml_process_memory_reason = caps.energy_reason = "NVML unavailable: " + caps.nvml_reason
        return
    try:
        _ensure_cuda_context(device)
        used, caps.nvml_process_memory_reason = gpu.process_bytes(os.getpid())
        caps.nvml_process_memory = used is not None
        try:
            gpu.energy_mj()
            caps.energy_counter = True
        except NvmlUnavailable as err:
            caps.energy_reason = f"no total-energy counter on this GPU ({err})"
    except NvmlUnavailable as err:
        caps.nvml_process_memory_reason = str(err)
    finally:
        gpu.close()


def probe_capabilities(device: torch.device) -> Capabilities:
    """Probe which memory, energy and process figures can be measured on `device`."""
    on_cuda = device.type == "cuda"
    reset, reset_reason = reset_rss_peak()
    caps = Capabilities(
        device=str(device),
        cuda_available=torch.cuda.is_available(),
        gpu_name=torch.cuda.get_device_name(device) if on_cuda else None,
        nvml_available=False,
        nvml_reason="",
        nvml_process_memory=False,
        nvml_process_memory_reason="",
        energy_counter=False,
        energy_reason="",
        torch_memory_stats=on_cuda,
        rss_method="VmHWM" if read_vm_hwm_bytes() is not None else "getrusage",
        rss_phase_reset=reset,
        rss_phase_reset_reason=reset_reason,
    )
    if not on_cuda:
        caps.nvml_reason = (
            "the selected device is CPU (NVML is not used)"
            if caps.cuda_available
            else f"no CUDA device here ({_nvml_library_status()})"
        )
        caps.nvml_process_memory_reason = "no GPU measured: the device is CPU"
        rapl, caps.energy_reason = open_rapl()
        caps.energy_counter = rapl is not None
        return caps
    _probe_nvml(device, caps)
    return caps


def other_gpu_processes(device: torch.device) -> list[dict[str, Any]] | None:
    """Processes other than this one using `device`'s GPU; None when NVML cannot tell."""
    gpu, _ = open_nvml(device)
    if gpu is None:
        return None
    try:
        procs = gpu.processes()
    except NvmlUnavailable:
        return None
    finally:
        gpu.close()
    mine = os.getpid()
    if any(proc["pid"] == mine for proc in procs) or not torch.cuda.is_initialized():
        return [proc for proc in procs if proc["pid"] != mine]
    # We hold a context but NVML shows other PIDs only (container namespace): one of them may be us.
    return None if procs else []


def _cpu_model() -> str:
    try:
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
    except OSError:
        match = None
    return match.group(1).strip() if match else (platform.processor() or platform.machine())


def describe_environment(device: torch.device) -> dict[str, Any]:
    """Software, hardware and otterbench's own version and commit, saved next to results (never raises)."""
    import transformers

    gpu_name = driver = None
    if device.type == "cuda":
        gpu_name = torch.cuda.get_device_name(device)
        gpu, _ = open_nvml(device)
        if gpu is not None:
            try:
                driver = gpu.driver()
            except NvmlUnavailable:
                driver = None
            finally:
                gpu.close()
    source = source_state()
    return {
        "otterbench": source.version,
        "device": str(device),
        "gpu_name": gpu_name,
        "driver": driver,
        "cuda": torch.version.cuda,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "git_commit": source.git_commit,  # of otterbench's own source, not of the working directory
        "git_dirty": source.git_dirty,
        "hostname": socket.gethostname(),
    }


def environment_report(device: torch.device) -> dict[str, Any]:
    """Capabilities, environment and other GPU users of `device`, as one JSON-serialisable dict."""
    return {
        "capabilities": probe_capabilities(device).to_dict(),
        "environment": describe_environment(device),
        "other_gpu_processes": other_gpu_processes(device) if device.type == "cuda" else [],
    }
