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
import hashlib
import json
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from otterbench.arms import ARM_NEEDS, ARM_ROLES, NullObserver, build_arm
from otterbench.arms.engine import warm_up_engine
from otterbench.dtypes import torch_dtype
from otterbench.models.loading import load_model_set
from otterbench.otter.spec import CHECKPOINT_LAYOUTS
from otterbench.run.fused_checkpoint import load_fused_arm
from otterbench.run.nondisruption import check_non_disruption
from otterbench.run.record import ArmRecord, energy_entry, latency_summaries
from otterbench.run.workload import Workload
from otterbench.trackers.energy import EnergyTracker
from otterbench.trackers.latency import StepTimer
from otterbench.trackers.memory import MemoryTracker, live_models, weights_bytes

Progress = Callable[[int, int], None]
Phase = Callable[[str], None]  # told the phase an arm enters that its progress bar does not count


def _no_phase(phase: str) -> None:
    """The phase callback used when the caller passes none."""


@dataclass(frozen=True)
class ArmJob:
    """Everything one arm's process needs; plain data so it crosses a spawn boundary."""

    arm: str
    workload: Workload
    profile: str
    profiles: dict[str, dict[str, Any]]
    overrides: dict[str, str]
    device: str  # resolved once by the plan: "cpu" or "cuda:N"
    dtype: str
    repeats: int
    warmup: int
    otter_path: str | None = None
    otter_ratio: float = 0.125
    layout: str = "fused"
    fused_path: str | None = None  # the layout's checkpoint built before any arm (layouts fused, packed)
    engine: str = "eager"  # "eager" or "compiled" (arms/engine.py)
    device_map: str | None = None
    cpu_threads: int = 1  # torch intra-op threads for CPU runs; 0 keeps torch's default
    extra: dict[str, Any] = field(default_factory=dict)


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


def token_ids_hash(token_ids: list[list[int]]) -> str:
    """sha256 of the generated ids (prompt order), so equal decisions are checkable across arms and runs."""
    return hashlib.sha256(json.dumps(token_ids, separators=(",", ":")).encode()).hexdigest()


def _build_otter(base: Any, job: ArmJob) -> tuple[Any, dict[str, Any]]:
    """The run's Otter: a saved (maybe distilled) insertion, else a fresh undistilled one."""
    from otterbench.otter.io import otter_for_run

    otter, distilled = otter_for_run(base, job.otter_path, job.otter_ratio)
    info = {
        "layout": job.layout,
        "distilled": distilled,
        "path": job.otter_path,
        "spec": otter.spec.to_dict(),
        "inserted_parameters": otter.num_inserted_parameters(),
    }
    return otter, info


def _load(job: ArmJob, device: torch.device) -> tuple[Any, dict[str, int], dict[str, Any]]:
    """Models for the arm, its weights by component, and (for Otter arms) what the insertion is."""
    if ARM_ROLES[job.arm] == "otter" and job.layout in CHECKPOINT_LAYOUTS:
        return load_fused_arm(job, device)  # the checkpoint built before any arm started, alone
    needs = set(ARM_NEEDS[job.arm]) - {"otter"}
    models = _load_models(job, needs | {"base"}, device)
    separate = [getattr(models, role) for role in sorted(needs - {"base"})]
    components = {"base": weights_bytes(models.base), "separate": weights_bytes(*separate), "inserted": 0}
    if ARM_ROLES[job.arm] != "otter":
        return build_arm(job.arm, models, engine=job.engine), components, {}
    otter, info = _build_otter(models.base, job)
    components["inserted"] = weights_bytes(otter.inserted)
    return build_arm(job.arm, models, otter, engine=job.engine), components, info


def _load_models(job: ArmJob, needs: set[str], device: torch.device) -> Any:
    return load_model_set(
        job.profile,
        needs=needs,
        overrides=job.overrides,
        profiles=job.profiles,
        device=device,
        dtype=torch_dtype(job.dtype, device.type),
        device_map=job.device_map,
    )


def _check_otter(job: ArmJob, otter: Any, device: torch.device) -> dict[str, Any]:
    """Non-disruption over the whole workload, after measuring; the fused arm loads the base only now."""
    if job.layout == "split":
        return check_non_disruption(otter.base_model, otter, job.workload, device, "split")
    base = _load_models(job, {"base"}, device).base
    report = check_non_disruption(base, otter, job.workload, device, job.layout)
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
        if self.device.type == "cpu" and job.cpu_threads > 0:
            pin_cpu_threads(job.cpu_threads)
        self.tracker = MemoryTracker(self.device)
        self.tracker.__enter__()
        with self.tracker.phase("runtime"):
            pass  # the process before any model: interpreter, torch and transformers (the floor)
        on_phase("loading models")
        with self.tracker.phase("load"):
            self.arm, self.components, self.otter_info = _load(job, self.device)
        self.models_in_memory = live_models()  # what the measured phases hold; listed between phases
        # outside every phase: compiling is not serving (the graphs and caches it leaves stay, and count)
        if self.arm.engine.compiled:
            on_phase("compiling")
        self.engine_info = warm_up_engine(self.arm, job.workload, self.device)
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

    def repeat(self) -> None:
        """One measured run of the whole workload: step latency, energy, the tokens chosen."""
        with EnergyTracker(self.device) as energy, StepTimer(self.device) as timer:
            output = self.arm.run(self.job.workload, self.device, timer)
        latency, runs = timer.record(), self.runs
        runs["ttft"] += latency.ttft_s
        runs["tpot"] += latency.tpot_s
        runs["total"].append(latency.total_s)
        runs["energy"].append(energy.record())
        runs["hashes"].append(token_ids_hash(output.token_ids))
        runs["output"], runs["method"] = output, latency.method

    @property
    def repeats_done(self) -> int:
        return len(self.runs["total"])

    def finish(self) -> ArmRecord:
        """Close the memory phases, check non-disruption (outside them), and return the arm's record."""
        self._decode.__exit__(None, None, None)
        self.tracker.__exit__(None, None, None)
        if self.runs["output"] is None:
            raise RuntimeError("no measured repeat finished")
        if self.otter_info:  # a check, not serving: after the memory phases closed
            self.on_phase("checking non-disruption")
            self.otter_info["non_disruption"] = _check_otter(self.job, self.arm.otter, self.device)
        record = _arm_record(self.job, self.runs, self.tracker.record(), self.components, self.otter_info)
        record.memory["models_in_memory"] = self.models_in_memory
        record.engine = self.engine_info.get("engine")
        record.engine_note = self.engine_info.get("engine_note")
        record.compile_s = self.engine_info.get("compile_s")
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
        token_ids=output.token_ids if job.extra.get("save_outputs") else None,
    )
