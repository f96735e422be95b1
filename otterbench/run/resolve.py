"""Resolve: a validated RunConfig -> one ResolvedRun (device, dtype, schedule, the workload, the jobs).

Everything a run settles before any arm starts happens here, once: the device is resolved, the dtype checked
against it, every bad input refused (run/preflight.py, which reads the model catalogue), the prompts tokenised into
the one workload every arm reads, the machine described, and one job per arm made, carrying the settings
groups whole and its models' sources from the catalogue. `prepare_run` then does the slow part once the
run's folder exists (so a stop is recorded): the fused checkpoint built and the memory bandwidth measured.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from otterbench.arms.registry import arm_info
from otterbench.backends import backend_spec
from otterbench.dtypes import torch_dtype
from otterbench.env import describe_environment, other_gpu_processes, resolve_device
from otterbench.models.sources import tokenizer_for
from otterbench.run.catalogue import Catalogue
from otterbench.run.config import RunConfig, RunInputError
from otterbench.run.efficiency import run_efficiency_inputs
from otterbench.run.events import EventSink, Notice, RunPhase, ignore
from otterbench.run.fused_checkpoint import needs_fused_checkpoint, with_fused_checkpoint
from otterbench.run.preflight import preflight
from otterbench.run.session import ArmJob
from otterbench.run.suite import load_prompts
from otterbench.workload import Workload, build_workload


@dataclass(frozen=True)
class ResolvedRun:
    """What `execute` runs and `assemble` records: the config, resolved once, and one job per arm."""

    config: RunConfig
    catalogue: Catalogue  # every model the run loads: role -> source, config, fingerprint
    device: str  # resolved: "cpu" or "cuda:N"
    schedule: str  # interleaved | sequential
    workload: Workload
    jobs: tuple[ArmJob, ...]
    created_utc: str
    workload_info: dict[str, Any]  # results.json `workload`: fingerprints, prompt and token counts
    environment: dict[str, Any]  # results.json `environment`, with the peak memory bandwidth measured here
    prediction: dict[str, Any] | None = None  # the planner's costs for this workload (run/efficiency.py)

    @property
    def dtype(self) -> str:
        return self.config.dtype


def choose_schedule(config: RunConfig, device: str) -> str:
    """interleaved on CPU (shared cores drift), sequential on GPUs (all arms' models at once may not fit)."""
    process = config.process
    if process.isolation == "inline":
        return "sequential"
    if process.schedule != "auto":
        return process.schedule
    return "interleaved" if device == "cpu" else "sequential"


def _workload(config: RunConfig, catalogue: Catalogue) -> Workload:
    suite = config.suite
    prompts = load_prompts(suite.prompts_path)
    return build_workload(
        prompts,
        tokenizer_for(catalogue["base"].source),
        batch_size=suite.batch_size,
        max_new_tokens=suite.max_new_tokens,
        seed=suite.seed,
        knobs=suite.knobs,
        num_prompts=min(suite.num_prompts, len(prompts)) if suite.num_prompts else None,
    )


def arm_job(config: RunConfig, catalogue: Catalogue, arm: str, workload: Workload, device: str) -> ArmJob:
    """The job one arm's process runs on the resolved `device`: the settings groups whole, its models' sources."""
    return ArmJob(
        arm=arm,
        workload=workload,
        models=catalogue.sources(),
        device=device,
        dtype=config.dtype,
        repeats=config.repeats,
        warmup=config.warmup,
        insertion=config.insertion,
        backend=config.backend,
        process=dataclasses.replace(config.process, device_map=config.device_map()),
        save_outputs=config.save_outputs,
        arm_origin=arm_info(arm).origin,
        backend_origin=backend_spec(config.backend.name).origin,
    )


def resolve_run(config: RunConfig, emit: EventSink = ignore) -> ResolvedRun:
    """Resolve the device and dtype, check the input, tokenise the prompts once, describe the machine.

    The slow preparations (the fused checkpoint, the bandwidth measurement) wait for `prepare_run`, once
    the run's folder exists, so a run stopped while they run is recorded as interrupted.
    """
    try:
        device = resolve_device(config.device)
        torch_dtype(config.dtype, device.type)
    except ValueError as error:
        raise RunInputError(str(error)) from None
    emit(RunPhase("checking the input"))
    (catalogue,) = preflight(config)  # every bad input at once, before any model loads or process starts
    for line in config.skipped_arms:
        emit(Notice(line))
    workload = _workload(config, catalogue)
    if device.type == "cuda":
        others = other_gpu_processes(device)
        if others:
            emit(Notice(f"{len(others)} other process(es) use {device}: measurements may be disturbed"))
    workload_info = {
        "fingerprint": workload.fingerprint(),
        "num_prompts": workload.num_prompts,
        "prompt_tokens": sum(len(row) for row in workload.prompt_ids),
        "model_fingerprints": catalogue.fingerprints(),
    }
    return ResolvedRun(
        config=config,
        catalogue=catalogue,
        device=str(device),
        schedule=choose_schedule(config, str(device)),
        workload=workload,
        jobs=_jobs(config, catalogue, workload, str(device)),
        created_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        workload_info=workload_info,
        environment={
            **describe_environment(device),
            "seed": config.suite.seed,
            "memory_bandwidth": None,
            "compute_peak": None,
        },
    )


def prepare_run(resolved: ResolvedRun, emit: EventSink = ignore) -> ResolvedRun:
    """The resolved run ready to measure: the fused checkpoint built (outside every measured process), the
    device's peak bandwidth measured and the planner's prediction made."""
    device = resolve_device(resolved.device)
    if needs_fused_checkpoint(resolved.config):
        emit(RunPhase(f"preparing the {resolved.config.insertion.layout} checkpoint"))
    # built here (or found cached) on the run's device, outside every measured process
    config = with_fused_checkpoint(resolved.config, resolved.catalogue, device)
    emit(RunPhase("measuring memory bandwidth and compute peak"))
    peaks, prediction = run_efficiency_inputs(
        config, resolved.catalogue, resolved.workload, device, lambda message: emit(Notice(message))
    )
    return dataclasses.replace(
        resolved,
        config=config,
        jobs=_jobs(config, resolved.catalogue, resolved.workload, resolved.device),
        environment={**resolved.environment, **peaks},
        prediction=prediction,
    )


def _jobs(config: RunConfig, catalogue: Catalogue, workload: Workload, device: str) -> tuple[ArmJob, ...]:
    return tuple(arm_job(config, catalogue, arm, workload, device) for arm in config.arms)
