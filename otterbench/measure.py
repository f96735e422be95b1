"""Measure one arm: load its models, warm up, then time and track memory over `repeats` runs.

This is what runs inside each arm's freshly spawned process (or inline, for debugging); it returns a plain,
JSON-ready dict that the runner places in results.json. Phases: `runtime` (the process before any model is built: its
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
from otterbench.env import resolve_device, resolve_dtype
from otterbench.models.loading import load_model_set
from otterbench.trackers.energy import EnergyTracker
from otterbench.trackers.latency import StepTimer
from otterbench.trackers.memory import MemoryTracker, weights_bytes
from otterbench.workload import Workload

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ArmJob:
    """Everything one arm's process needs; plain data so it crosses a spawn boundary."""

    arm: str
    workload: Workload
    profile: str
    profiles: dict[str, dict[str, Any]]
    overrides: dict[str, str]
    device: str
    dtype: str
    repeats: int
    warmup: int
    otter_path: str | None = None
    otter_ratio: float = 0.125
    layout: str = "split"
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
    from otterbench.otter import OtterSpec, insert_otter, load_otter, read_otter_config

    if job.otter_path:
        otter = load_otter(base, job.otter_path)
        distilled = bool(read_otter_config(job.otter_path).get("metadata", {}).get("distilled", False))
    else:
        otter = insert_otter(base, OtterSpec.from_ratio(base.config, job.otter_ratio, signal="vocab"))
        distilled = False
    info = {
        "layout": job.layout,
        "distilled": distilled,
        "path": job.otter_path,
        "spec": otter.spec.to_dict(),
        "inserted_parameters": otter.num_inserted_parameters(),
    }
    return otter, info


def _non_disruption(base: Any, otter_like: Any, workload: Workload, device: torch.device) -> dict[str, Any]:
    from otterbench.otter import measure_disruption

    batch = next(iter(workload.batches(device)))
    report = measure_disruption(base, otter_like, batch.input_ids, batch.attention_mask)
    return {"layout": "", **report.to_dict()}


def _load(job: ArmJob, device: torch.device) -> tuple[Any, dict[str, int], dict[str, Any]]:
    """Models for the arm, its weights by component, and (for Otter arms) what the insertion is."""
    needs = set(ARM_NEEDS[job.arm]) - {"otter"}
    models = load_model_set(
        job.profile,
        needs=needs | {"base"},
        overrides=job.overrides,
        profiles=job.profiles,
        device=device,
        dtype=resolve_dtype(job.dtype, device),
        device_map=job.device_map,
    )
    separate = [getattr(models, role) for role in ("reward_model", "expert", "anti_expert") if role in needs]
    components = {"base": weights_bytes(models.base), "separate": weights_bytes(*separate), "inserted": 0}
    if ARM_ROLES[job.arm] != "otter":
        return build_arm(job.arm, models), components, {}
    otter, info = _build_otter(models.base, job)
    if job.layout == "fused":
        otter_like = otter.to_fused()
        # checked now, while the base still exists (it is freed next); split is checked after measuring
        info["non_disruption"] = {
            **_non_disruption(models.base, otter_like, job.workload, device),
            "layout": "fused",
        }
        components["inserted"] = weights_bytes(otter_like) - components["base"]
        models.base = otter = None  # the fused checkpoint replaces base + split insertion in memory
        gc.collect()
    else:
        otter_like = otter
        components["inserted"] = weights_bytes(otter.inserted)
    return build_arm(job.arm, models, otter_like), components, info


def _measured_runs(arm: Any, job: ArmJob, device: torch.device, progress: Progress | None) -> dict[str, Any]:
    total_steps = job.warmup + job.repeats
    for index in range(job.warmup):
        arm.run(job.workload, device, NullObserver())
        if progress:
            progress(index + 1, total_steps)
    ttft, tpot, totals, energies, hashes, output = [], [], [], [], [], None
    for index in range(job.repeats):
        with EnergyTracker(device) as energy, StepTimer(device) as timer:
            output = arm.run(job.workload, device, timer)
        latency = timer.record()
        ttft += latency.ttft_s
        tpot += latency.tpot_s
        totals.append(latency.total_s)
        energies.append(energy.record())
        hashes.append(token_ids_hash(output.token_ids))
        if progress:
            progress(job.warmup + index + 1, total_steps)
    return {
        "ttft": ttft,
        "tpot": tpot,
        "total": totals,
        "energy": energies,
        "hashes": hashes,
        "output": output,
        "method": latency.method,
    }


def measure_arm(job: ArmJob, progress: Progress | None = None) -> dict[str, Any]:
    """Run and measure one arm; never raises: a failure comes back as status "failed" with its error."""
    result: dict[str, Any] = {"name": job.arm, "role": ARM_ROLES.get(job.arm, "base"), "status": "failed"}
    try:
        device = resolve_device(job.device)
        if device.type == "cpu" and job.cpu_threads > 0:
            torch.set_num_threads(
                job.cpu_threads
            )  # fewer OpenMP spin-waits on shared cores: steadier timings
        tracker = MemoryTracker(device)
        with tracker:
            with tracker.phase("runtime"):
                pass  # the process before any model: interpreter, torch and transformers (the floor)
            with tracker.phase("load"):
                arm, components, otter_info = _load(job, device)
            with tracker.phase("prefill"):
                arm.run(dataclasses.replace(job.workload, max_new_tokens=1), device, NullObserver())
            with tracker.phase("decode"):
                runs = _measured_runs(arm, job, device, progress)
        if (
            otter_info and "non_disruption" not in otter_info
        ):  # outside the measured phases: a check, not serving
            otter = arm.otter
            otter_info["non_disruption"] = {
                **_non_disruption(otter.base_model, otter, job.workload, device),
                "layout": "split",
            }
        result.update(_arm_record(job, runs, tracker.record(), components, otter_info))
    except Exception as error:  # noqa: BLE001 — an arm's failure is data, recorded with its traceback
        result["error"] = f"{type(error).__name__}: {error}"
        result["traceback"] = traceback.format_exc(limit=8)
    return result


def _arm_record(
    job: ArmJob, runs: dict[str, Any], memory: Any, components: dict[str, int], otter_info: dict[str, Any]
) -> dict[str, Any]:
    output = runs["output"]
    memory_dict = memory.to_dict()
    memory_dict["weights_bytes"] = sum(components.values())
    memory_dict["weights_by_component"] = components
    record = {
        "status": "ok",
        "error": None,
        "new_tokens": output.new_tokens // job.workload.num_prompts,
        "token_ids_hash": runs["hashes"][0],
        "deterministic": len(set(runs["hashes"])) == 1,  # every measured repeat chose the same tokens
        "raw_latency": {
            "ttft_s": runs["ttft"],
            "tpot_s": runs["tpot"],
            "total_s": runs["total"],
            "method": runs["method"],
        },
        "memory": memory_dict,
        "raw_energy": [e.to_dict() for e in runs["energy"]],
        "calls": dict(output.calls),
        "rows_scored": output.rows_scored,
        "total_new_tokens": output.new_tokens,
    }
    if otter_info:
        record["otter"] = otter_info
    return record
