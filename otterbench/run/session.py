"""Measure one arm: load its models, warm up, then time and track memory over `repeats` runs.

This is what runs inside each arm's freshly spawned process (or inline, for debugging); it returns the arm's
`ArmRecord` (otterbench/run/record.py), the shape results.json keeps. Phases: `runtime` (the process before any model is built: its
floor), `load` (models in memory), `prefill` (a run
of one new token per prompt: prefill plus the first pick), `decode` (warm-up and measured full runs; its
peak includes prefill).
"""

from __future__ import annotations

import dataclasses
import gc
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from otterbench.arms import NullObserver
from otterbench.arms.generated import GeneratedArm
from otterbench.arms.registry import ensure_registered
from otterbench.backends import BackendSettings
from otterbench.run.arm_models import load_arm, load_job_models
from otterbench.run.generated_check import CHECK_ROLES, generated_passes
from otterbench.run.nondisruption import check_non_disruption
from otterbench.run.record import ArmRecord, energy_entry, latency_summaries, token_ids_hash
from otterbench.run.settings import OtterSettings, ProcessSettings
from otterbench.trackers.energy import EnergyTracker
from otterbench.trackers.latency import StepTimer
from otterbench.trackers.memory import MemoryTracker, live_models
from otterbench.workload import Workload

Progress = Callable[[int, int], None]
Phase = Callable[[str], None]  # told the phase an arm enters that its progress bar does not count


def _no_phase(phase: str) -> None:
    """The phase callback used when the caller passes none."""


@dataclass(frozen=True)
class ArmJob:
    """Everything one arm's process needs; plain data so it crosses a spawn boundary."""

    arm: str
    workload: Workload
    models: dict[str, str]  # role -> source of every model the arm may load (the run's catalogue)
    device: str  # resolved once by resolve: "cpu" or "cuda:N"
    dtype: str
    repeats: int
    warmup: int
    insertion: OtterSettings = field(default_factory=OtterSettings)
    backend: BackendSettings = field(default_factory=BackendSettings)
    process: ProcessSettings = field(default_factory=ProcessSettings)  # its device_map resolved
    save_outputs: bool = False  # hand the generated ids back to the parent (outputs.jsonl)
    arm_origin: str = ""  # the module registering the arm's spec (imported first in a fresh process)
    backend_origin: str = ""  # the module registering the backend
    compile_cache_dir: str | None = None  # torch.compile's caches in its process (run/compile_cache.py)


def pin_cpu_threads(count: int) -> list[int] | None:
    """Use `count` torch threads pinned to the first `count` allowed cores; returns the cores (Linux only).

    Every arm's process then runs on the same cores: unpinned processes migrate between cores and their
    timings wander by up to 2x from run to run on a shared 2-core machine; pinned, they agree within a few %.
    """
    torch.set_num_threads(count)
    if not hasattr(os, "sched_setaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))[:count]
    os.sched_setaffinity(0, cores)
    return cores


def _check_otter(job: ArmJob, otter: Any, device: torch.device) -> dict[str, Any]:
    """Non-disruption over the whole workload, after measuring; the fused arm loads the base only now."""
    insertion = job.insertion
    if insertion.layout == "split":
        return check_non_disruption(
            otter.base_model, otter, job.workload, device, "split", insertion.yardstick_engine
        )
    base = load_job_models(job, ["base"], device)["base"]
    report = check_non_disruption(
        base, otter, job.workload, device, insertion.layout, insertion.yardstick_engine
    )
    del base
    gc.collect()
    return report


class ArmSession:
    """One arm in its process, driven step by step: load, prefill, then warm-up and measured repeats.

    `otterbench run` drives sessions one after another (sequential) or round-robin across live processes
    (interleaved: every round runs each arm once, so a slow spell of a shared machine hits all arms alike).
    """

    def __init__(self, job: ArmJob, on_phase: Phase = _no_phase) -> None:
        self.job, self.on_phase = job, on_phase
        self.device = torch.device(job.device)
        if self.device.type == "cpu" and job.process.cpu_threads > 0:
            pin_cpu_threads(job.process.cpu_threads)
        self.tracker = MemoryTracker(self.device)
        self.tracker.__enter__()
        with self.tracker.phase("runtime"):
            pass  # the process before any model: interpreter, torch and transformers (the floor)
        on_phase("loading models")
        with self.tracker.phase("load"):
            self.arm, self.components, self.otter_info = load_arm(job, self.device)
        self.models_in_memory = live_models()  # what the measured phases hold; listed between phases
        # outside every phase: compiling is not serving (the graphs and caches it leaves stay, and count)
        if getattr(getattr(self.arm, "engine", None), "compiled", False):
            on_phase("compiling")
        self.engine_info = self.arm.warm_up(job.workload, self.device)
        self.runs: dict[str, Any] = {
            "ttft": [],
            "tpot": [],
            "total": [],
            "energy": [],
            "hashes": [],
            "output": None,
            "method": None,
        }
        self._decode: Any = None

    def prefill(self) -> None:
        """A run of one new token per prompt: prefill plus the first pick (its own memory phase)."""
        self.on_phase("prefill")
        with self.tracker.phase("prefill"):
            self.arm.run(
                dataclasses.replace(self.job.workload, max_new_tokens=1), self.device, NullObserver()
            )
        self._decode = self.tracker.phase("decode")
        self._decode.__enter__()

    def warmup(self) -> None:
        self.arm.run(self.job.workload, self.device, NullObserver())

    def measure(self) -> tuple[Any, Any, Any]:
        """One measured run of the whole workload: its output, step latencies and energy (kept by `keep`)."""
        with EnergyTracker(self.device) as energy, StepTimer(self.device) as timer:
            output = self.arm.run(self.job.workload, self.device, timer)
        return output, output.latency or timer.record(), energy.record()

    def keep(self, measured: tuple[Any, Any, Any]) -> RepeatSample:
        """Add one measured run to the arm's samples; return what the parent keeps of it as it finishes."""
        (output, latency, energy), runs = measured, self.runs
        runs["ttft"] += latency.ttft_s
        runs["tpot"] += latency.tpot_s
        runs["total"].append(latency.total_s)
        runs["energy"].append(energy)
        runs["hashes"].append(token_ids_hash(output.token_ids))
        runs["output"], runs["method"] = output, latency.method
        return RepeatSample(
            latency.ttft_s, latency.tpot_s, latency.total_s, runs["hashes"][-1], self._new_tokens(output)
        )

    def repeat(self) -> RepeatSample:
        """One measured run of the whole workload: step latency, energy, the tokens chosen."""
        return self.keep(self.measure())

    def _new_tokens(self, output: Any) -> int:
        return output.new_tokens // self.job.workload.num_prompts

    def _generated_passes(self) -> dict[str, Any] | None:
        """Under a generate-level backend: this arm's passes for the non-disruption check (base or Otter)."""
        if not isinstance(self.arm, GeneratedArm):
            return None
        spec = ensure_registered(self.job.arm, self.job.arm_origin)
        if spec.role in CHECK_ROLES:
            self.on_phase("checking non-disruption")
        return generated_passes(self.arm, spec, self.job.workload)

    @property
    def repeats_done(self) -> int:
        return len(self.runs["total"])

    def finish(self, check: bool = True) -> ArmRecord:
        """Close the memory phases, check non-disruption (outside them; not when `check` is False, as when
        a run is stopped and must exit at once), and return the arm's record."""
        self._decode.__exit__(None, None, None)
        self.tracker.__exit__(None, None, None)
        try:
            return self._record(check)
        finally:
            self.arm.close()  # a generate-level backend's engine and its processes go now, not at exit

    def _record(self, check: bool) -> ArmRecord:
        if self.runs["output"] is None:
            raise RuntimeError("no measured repeat finished")
        passes = self._generated_passes() if check else None
        if self.otter_info:  # a check, not serving: after the memory phases closed
            if check and passes is None:
                self.on_phase("checking non-disruption")
            report = passes or (_check_otter(self.job, self.arm.otter, self.device) if check else None)
            self.otter_info["non_disruption"] = report
        record = _arm_record(self.job, self.runs, self.tracker.record(), self.components, self.otter_info)
        record.check_passes = passes
        record.memory["models_in_memory"] = self.models_in_memory
        engine_memory = self.runs["output"].engine_memory
        if engine_memory:  # the backend's own accounting; its weights are the arm's when it counts them
            record.memory["engine"] = {"backend": self.job.backend.name, **engine_memory}
            if engine_memory.get("weights_bytes") is not None:
                record.memory["weights_bytes"] = engine_memory["weights_bytes"]
        record.engine = self.engine_info.get("engine")
        record.engine_note = self.engine_info.get("engine_note")
        record.compile_s = self.engine_info.get("compile_s")
        return record


@dataclass(frozen=True)
class RepeatSample:
    """One measured repeat as it reaches the parent the moment it finishes (kept if the process dies)."""

    ttft_s: list[float]
    tpot_s: list[float]
    total_s: float
    token_ids_hash: str
    new_tokens: int  # per prompt


def record_of_repeats(arm: str, error: str, samples: list[RepeatSample]) -> ArmRecord:
    """A "failed" arm (its process died or could not report) that keeps the repeats it sent as they finished."""
    record = ArmRecord.failed(arm, error)
    if samples:
        raw = {
            "ttft_s": [value for sample in samples for value in sample.ttft_s],
            "tpot_s": [value for sample in samples for value in sample.tpot_s],
            "total_s": [sample.total_s for sample in samples],
        }
        record.latency = latency_summaries(raw)
        record.new_tokens, record.token_ids_hash = samples[0].new_tokens, samples[0].token_ids_hash
        record.error = f"{error}; the {len(samples)} measured repeat(s) it finished are kept"
    return record


def failure_record(arm: str, error: BaseException) -> ArmRecord:
    """An arm that raised: status "failed", its error in one line and a short traceback."""
    return ArmRecord.failed(
        arm, f"{type(error).__name__}: {error}", "".join(traceback.format_exception(error, limit=8))
    )


def measure_arm(job: ArmJob, progress: Progress | None = None, on_phase: Phase = _no_phase) -> ArmRecord:
    """Run and measure one arm start to finish; never raises: a failure comes back as status "failed"."""
    try:
        session = ArmSession(job, on_phase)
        session.prefill()
        total = job.warmup + job.repeats
        for index in range(total):
            if index < job.warmup:
                session.warmup()
            else:
                session.repeat()
            if progress:
                progress(index + 1, total)
        return session.finish()
    except Exception as error:  # noqa: BLE001 — an arm's failure is data, recorded with its traceback
        return failure_record(job.arm, error)


def _arm_record(
    job: ArmJob, runs: dict[str, Any], memory: Any, components: dict[str, int], otter_info: dict[str, Any]
) -> ArmRecord:
    output = runs["output"]
    memory_dict = memory.to_dict()
    memory_dict["weights_bytes"] = sum(components.values())
    memory_dict["weights_by_component"] = components
    raw_latency = {"ttft_s": runs["ttft"], "tpot_s": runs["tpot"], "total_s": runs["total"]}
    return ArmRecord(
        name=job.arm,
        status="ok",
        new_tokens=output.new_tokens // job.workload.num_prompts,
        token_ids_hash=runs["hashes"][0],
        latency=latency_summaries(raw_latency),
        timer=runs["method"],
        memory=memory_dict,
        energy=energy_entry([e.to_dict() for e in runs["energy"]], output.new_tokens),
        calls=dict(output.calls),
        rows_scored=output.rows_scored,
        deterministic=len(set(runs["hashes"])) == 1,  # every measured repeat chose the same tokens
        otter=otter_info or None,
        speculation=output.speculation,  # draft counters; metrics are derived in results/accel.py
        # back to the parent, which writes outputs.jsonl; not part of results.json
        token_ids=output.token_ids if job.save_outputs else None,
    )
