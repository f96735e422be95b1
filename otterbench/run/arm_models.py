"""An arm's models in its process: loaded from the sources its job carries, built into the arm it runs.

Three ways, chosen by the arm's spec and the job's backend: a generate-level backend loads the models itself
(from their sources); an Otter arm of an engine-ready layout (fused, packed) loads the checkpoint built
before any arm started, alone, as deployed; every other arm loads its roles' models (and, for a split Otter arm, inserts
Otter into the base). Each returns the arm, its weights by component and what the insertion is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from otterbench.arms import build_arm
from otterbench.arms.generated import GeneratedArm
from otterbench.arms.registry import ensure_registered
from otterbench.arms.spec import ArmSpec
from otterbench.backends import BackendSpec, ModelSources, backend_spec
from otterbench.dtypes import torch_dtype
from otterbench.models.loading import load_models
from otterbench.models.roles import OTTER_ROLE
from otterbench.otter import load_fused
from otterbench.otter.io import otter_for_run
from otterbench.otter.packed import load_packed
from otterbench.otter.spec import CHECKPOINT_LAYOUTS
from otterbench.run.fused_checkpoint import INFO_FILE
from otterbench.trackers.memory import weights_bytes

Loaded = tuple[Any, dict[str, int], dict[str, Any]]  # the arm, its weights by component, the insertion


def load_job_models(job: Any, roles: Iterable[str], device: torch.device) -> dict[str, Any]:
    """role -> model for `roles`, from the job's sources, in the run's dtype and device map."""
    sources = {role: job.models[role] for role in roles}
    dtype = torch_dtype(job.dtype, device.type)
    return load_models(sources, device=device, dtype=dtype, device_map=job.process.device_map)


def load_arm(job: Any, device: torch.device) -> Loaded:
    """Models for the arm, its weights by component, and (for Otter arms) what the insertion is."""
    spec = ensure_registered(job.arm, job.arm_origin)
    backend = backend_spec(job.backend.name, job.backend_origin)
    if backend.kind == "generate":
        return _load_generated(job, spec, backend, device)
    if spec.role == "otter" and job.insertion.layout in CHECKPOINT_LAYOUTS:
        return _load_checkpoint(job, device)  # the checkpoint built before any arm started, alone
    needs = set(spec.needs) - {OTTER_ROLE}
    models = load_job_models(job, needs | {"base"}, device)
    separate = [models[role] for role in sorted(needs - {"base"})]
    components = {"base": weights_bytes(models["base"]), "separate": weights_bytes(*separate), "inserted": 0}
    if spec.role != "otter":
        return build_arm(job.arm, models, engine=job.backend.name), components, {}
    otter, info = _build_otter(models["base"], job)
    components["inserted"] = weights_bytes(otter.inserted)
    return build_arm(job.arm, models, otter, engine=job.backend.name), components, info


def _build_otter(base: Any, job: Any) -> tuple[Any, dict[str, Any]]:
    """The run's Otter: a saved (maybe distilled) insertion, else a fresh undistilled one."""
    insertion = job.insertion
    otter, distilled = otter_for_run(base, insertion.path, insertion.ratio)
    info = {
        "layout": insertion.layout,
        "distilled": distilled,
        "path": insertion.path,
        "spec": otter.spec.to_dict(),
        "inserted_parameters": otter.num_inserted_parameters(),
    }
    return otter, info


def _load_checkpoint(job: Any, device: torch.device) -> Loaded:
    """The Otter arm's models as deployed: the layout's checkpoint alone; its weights by component (what it
    stores beyond the base counts as inserted, zero blocks included); its info."""
    layout = job.insertion.layout
    if job.insertion.fused_path is None:
        raise ValueError(
            f"arm {job.arm} runs the {layout} layout but its job names no checkpoint: build one first "
            "with prepare_fused_checkpoint (run_suite does), or use layout='split'"
        )
    directory = Path(job.insertion.fused_path)
    info = json.loads((directory / INFO_FILE).read_text())
    load = {"fused": load_fused, "packed": load_packed}[layout]
    otter = load(directory, device=device, dtype=torch_dtype(job.dtype, device.type))
    base_bytes = info.pop("base_parameters") * next(otter.parameters()).element_size()
    components = {"base": base_bytes, "separate": 0, "inserted": weights_bytes(otter) - base_bytes}
    info = {"layout": layout, "fused_checkpoint": str(directory), **info}
    return build_arm(job.arm, None, otter, engine=job.backend.name), components, info


def _load_generated(job: Any, spec: ArmSpec, backend: BackendSpec, device: torch.device) -> Loaded:
    """The arm under a backend that loads its models itself, from their sources (weights it does not report)."""
    sources = {role: job.models[role] for role in spec.needs if role != OTTER_ROLE}
    if job.insertion.fused_path:
        sources[OTTER_ROLE] = job.insertion.fused_path
    models = ModelSources(sources, job.dtype, job.process.device_map)
    arm = GeneratedArm(spec, backend, models, device, job.backend.options)
    info = _insertion_info(job) if spec.role == "otter" else {}
    return arm, {"base": 0, "separate": 0, "inserted": 0}, info


def _insertion_info(job: Any) -> dict[str, Any]:
    """What the insertion a generate-level backend loaded is: its checkpoint's record, when it has one."""
    insertion = job.insertion
    if not insertion.fused_path:
        keys = ("distilled", "spec", "inserted_parameters")
        return {"layout": insertion.layout, "path": insertion.path, **dict.fromkeys(keys)}
    info = json.loads((Path(insertion.fused_path) / INFO_FILE).read_text())
    info.pop("base_parameters", None)
    return {"layout": insertion.layout, "fused_checkpoint": insertion.fused_path, **info}
