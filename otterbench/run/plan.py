"""Resolve: a validated RunConfig -> one RunPlan (device, dtype, schedule, the shared workload, the jobs).

Everything a run settles before any arm starts happens here, once: the device is resolved, the dtype checked
against it, the prompts tokenised into the one workload every arm reads, and the machine described.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from otterbench.dtypes import torch_dtype
from otterbench.env import describe_environment, other_gpu_processes, resolve_device
from otterbench.run.config import RunConfig, RunInputError
from otterbench.run.efficiency import run_efficiency_inputs
from otterbench.run.events import EventSink, Notice, RunPhase, ignore
from otterbench.run.fused_checkpoint import needs_fused_checkpoint, with_fused_checkpoint
from otterbench.run.preflight import preflight
from otterbench.run.session import ArmJob
from otterbench.run.suite import load_prompts
from otterbench.run.workload import Workload, build_workload

TINY = "tiny"


@dataclass(frozen=True)
class RunPlan:
    """What `execute` runs and `assemble` records: the config, resolved once, and one job per arm."""

    config: RunConfig
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


def run_tokenizer(config: RunConfig) -> Any:
    from otterbench.models.loading import load_real_tokenizer
    from otterbench.models.tokenizer import load_tokenizer

    source = config.source("base")
    return load_tokenizer() if source == TINY else load_real_tokenizer(source)


def config_fingerprint(source: str | None, role: str) -> str | None:
    """A short hash naming a model without loading its weights: its source and architecture config."""
    if source is None:
        return None
    if source == TINY:
        from otterbench.models.tiny import tiny_seed

        payload = {"source": TINY, "role": role, "seed": tiny_seed(role)}
    else:
        from otterbench.models.loading import load_config  # the loader's offline check, one-line errors

        config = load_config(source, role)
        payload = {"source": source, "config": config.to_diff_dict()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _roles(config: RunConfig) -> list[str]:
    from otterbench.arms.registry import model_roles

    return sorted(model_roles(config.arms))


def choose_schedule(config: RunConfig, device: str) -> str:
    """interleaved on CPU (shared cores drift), sequential on GPUs (all arms' models at once may not fit)."""
    if config.isolation == "inline":
        return "sequential"
    if config.schedule != "auto":
        return config.schedule
    return "interleaved" if device == "cpu" else "sequential"


def _workload(config: RunConfig) -> Workload:
    suite = config.suite
    prompts = load_prompts(suite.prompts_path)
    return build_workload(
        prompts,
        run_tokenizer(config),
        batch_size=suite.batch_size,
        max_new_tokens=suite.max_new_tokens,
        k=suite.k,
        weight=suite.weight,
        alpha=suite.alpha,
        seed=suite.seed,
        draft_length=suite.draft_length,
        filter_p=suite.filter_p,
        num_prompts=min(suite.num_prompts, len(prompts)) if suite.num_prompts else None,
    )


def resolve_plan(config: RunConfig, emit: EventSink = ignore) -> RunPlan:
    """Resolve the device and dtype, check the input, tokenise the prompts once, describe the machine."""
    try:
        device = resolve_device(config.device)
        torch_dtype(config.dtype, device.type)
    except ValueError as error:
        raise RunInputError(str(error)) from None
    emit(RunPhase("checking the input"))
    preflight(config)  # every bad input at once, before any model loads or any process starts
    if needs_fused_checkpoint(config):
        emit(RunPhase(f"preparing the {config.layout} checkpoint"))
    # built here (or found cached) on the run's device, outside every measured process
    config = with_fused_checkpoint(config, device)
    workload = _workload(config)
    if device.type == "cuda":
        others = other_gpu_processes(device)
        if others:
            emit(Notice(f"{len(others)} other process(es) use {device}: measurements may be disturbed"))
    workload_info = {
        "fingerprint": workload.fingerprint(),
        "num_prompts": workload.num_prompts,
        "prompt_tokens": sum(len(row) for row in workload.prompt_ids),
        "model_fingerprints": {
            role: config_fingerprint(config.source(role), role) for role in _roles(config)
        },
    }
    emit(RunPhase("measuring memory bandwidth"))
    bandwidth, prediction = run_efficiency_inputs(
        config, workload, device, lambda message: emit(Notice(message))
    )
    return RunPlan(
        config=config,
        device=str(device),
        schedule=choose_schedule(config, str(device)),
        workload=workload,
        jobs=tuple(config.arm_job(arm, workload, str(device)) for arm in config.arms),
        created_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        workload_info=workload_info,
        environment={
            **describe_environment(device),
            "seed": config.suite.seed,
            "memory_bandwidth": bandwidth,
        },
        prediction=prediction,
    )
