"""The engine-ready Otter checkpoint a run measures (fused or packed): built once, outside every measured
process, then loaded as deployed.

`prepare_fused_checkpoint` runs in the parent before any arm starts: it streams the base's weights tensor by
tensor from its safetensors files onto the run's device, adds Otter's inserted tensors (fresh from the
spec's seeded init, or the distilled insertion of `--otter DIR`, read tensor by tensor) and writes the
layout's checkpoint shard by shard (`otter.checkpoint.build_checkpoint`): the base and the result are never
whole in memory. A base with no safetensors folder (the tiny profile) is built in memory and read the same
way. The Otter arm's process then calls `load_fused_arm`, which loads that folder with `load_fused` or
`load_packed` and nothing else, so its measured memory holds exactly what a deployment holds.

Checkpoints are cached under `<out>/fused-cache/<key>/`: the key hashes the layout, the base's source and config (plus the
names, sizes and mtimes of its weight files for a local folder; the seed for the tiny profile), the Otter
source (ratio, or the distilled folder's config and weights' size and mtime) and the dtype, so a later run
with the same inputs reuses it and a changed input builds a new one.
"""

from __future__ import annotations

import gc
import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from otterbench.arms.registry import ARM_ROLES
from otterbench.dtypes import torch_dtype
from otterbench.otter.spec import CHECKPOINT_LAYOUTS

CACHE_DIR = "fused-cache"
INFO_FILE = "otter_run_info.json"  # what the run records about the insertion, beside the checkpoint


def _files_signature(folder: Path, patterns: tuple[str, ...]) -> list[tuple[str, int, int]]:
    """(name, size, mtime_ns) of the weight files in `folder`: a cheap stand-in for hashing gigabytes."""
    found = sorted(p for pattern in patterns for p in folder.glob(pattern))
    return [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in found]


def fused_cache_key(config: Any) -> str:
    """A short hash of everything the fused checkpoint depends on (see the module docstring)."""
    from otterbench.run.plan import config_fingerprint

    source = config.source("base")
    payload: dict[str, Any] = {
        "layout": config.layout,
        "base": config_fingerprint(source, "base"),
        "dtype": config.dtype,
        "ratio": None if config.otter_path else config.otter_ratio,
    }
    if source and Path(source).is_dir():
        payload["base_files"] = _files_signature(Path(source), ("*.safetensors", "*.bin"))
    if config.otter_path:
        folder = Path(config.otter_path).resolve()
        payload["otter"] = [str(folder), _files_signature(folder, ("*.json", "*.safetensors"))]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def needs_fused_checkpoint(config: Any) -> bool:
    """A run of an engine-ready layout (fused, packed) with at least one Otter arm."""
    return config.layout in CHECKPOINT_LAYOUTS and any(ARM_ROLES[arm] == "otter" for arm in config.arms)


def _base_folder(source: str) -> Path | None:
    """The local folder holding the base's safetensors (a path, or a hub id's cached snapshot), else None."""
    from otterbench.otter.checkpoint import INDEX_FILE, SINGLE_FILE

    folder = Path(source).expanduser()
    if not folder.is_dir():
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(source, local_files_only=True))
        except Exception:  # noqa: BLE001 — any miss means: build the base in memory instead
            return None
    return folder if (folder / INDEX_FILE).is_file() or (folder / SINGLE_FILE).is_file() else None


def _base_tensors(config: Any, device: torch.device, dtype: torch.dtype) -> tuple[Any, Any, int]:
    """The base's config, its tensors read piece by piece on `device`, and its parameter count."""
    from transformers import AutoModelForCausalLM

    from otterbench.models.loading import load_config, load_model_set
    from otterbench.otter.checkpoint import FolderTensors, StateTensors

    source = config.source("base")
    folder = None if source == "tiny" else _base_folder(source)
    if folder is None:  # the tiny profile, or weights not in safetensors: build it (small) in memory
        base = load_model_set(
            config.profile,
            needs={"base"},
            overrides=config.overrides,
            profiles=config.suite.profiles,
            device=device,
            dtype=dtype,
        ).base
        tied = bool(getattr(base.config, "tie_word_embeddings", False))
        count = sum(p.numel() for p in base.parameters())  # tied tensors once
        return base.config, StateTensors(base.state_dict(), tied, device, dtype), count
    base_config = load_config(str(folder), "base")
    with torch.device("meta"):  # the parameter count (tied tensors once) without any weight
        count = sum(p.numel() for p in AutoModelForCausalLM.from_config(base_config).parameters())
    tied = bool(getattr(base_config, "tie_word_embeddings", False))
    return base_config, FolderTensors(folder, tied, device, dtype), count


def _inserted(
    config: Any, base_config: Any, device: torch.device, dtype: torch.dtype
) -> tuple[Any, Any, bool]:
    """The spec, the inserted tensors' source and whether they were distilled."""
    from otterbench.otter import OtterSpec
    from otterbench.otter.checkpoint import FolderTensors, SavedInserted, fresh_inserted
    from otterbench.otter.io import WEIGHTS_FILE, read_otter_config

    if not config.otter_path:
        spec = OtterSpec.from_ratio(base_config, config.otter_ratio, signal="vocab")
        return spec, fresh_inserted(base_config, spec, device, dtype), False
    record = read_otter_config(config.otter_path)
    weights = FolderTensors(config.otter_path, False, device, dtype, file_name=WEIGHTS_FILE)
    distilled = bool(record.get("metadata", {}).get("distilled", False))
    return OtterSpec.from_dict(record["spec"]), SavedInserted(weights), distilled


def _build(config: Any, directory: Path, device: torch.device) -> None:
    """Stream the base and the insertion into the layout's checkpoint; write the run info beside it."""
    from otterbench.otter import count_inserted_parameters
    from otterbench.otter.checkpoint import build_checkpoint
    from otterbench.otter.spec import BaseDims

    started = time.perf_counter()
    dtype = torch_dtype(config.dtype, device.type)
    base_config, base, base_parameters = _base_tensors(config, device, dtype)
    spec, inserted, distilled = _inserted(config, base_config, device, dtype)
    build_checkpoint(directory, config.layout, base, base_config, inserted, spec)
    info = {
        "distilled": distilled,
        "path": config.otter_path,
        "spec": spec.to_dict(),
        "inserted_parameters": count_inserted_parameters(BaseDims.from_config(base_config), spec),
        "base_parameters": base_parameters,
        "checkpoint_build_s": time.perf_counter() - started,  # read, build and write, on `device`
    }
    (directory / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")


def prepare_fused_checkpoint(config: Any, device: str | torch.device = "cpu") -> Path | None:
    """The layout checkpoint folder for `config` (built on `device` now if not cached); None when the run
    needs none."""
    if not needs_fused_checkpoint(config):
        return None
    directory = Path(config.out_dir) / CACHE_DIR / fused_cache_key(config)
    if (directory / INFO_FILE).is_file():
        return directory
    directory.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".building-", dir=directory.parent))
    try:
        with torch.inference_mode():
            _build(config, scratch, torch.device(device))
        gc.collect()  # what the build held is gone before any arm starts
        if torch.device(device).type == "cuda":
            torch.cuda.empty_cache()
        scratch.rename(directory)  # complete checkpoints only: a crash leaves a .building- folder
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return directory


def load_fused_arm(job: Any, device: torch.device) -> tuple[Any, dict[str, int], dict[str, Any]]:
    """The Otter arm's models as deployed: the layout's checkpoint alone; its weights by component (what it
    stores beyond the base counts as inserted, zero blocks included); its info."""
    from otterbench.arms import build_arm
    from otterbench.otter import load_fused
    from otterbench.otter.packed import load_packed
    from otterbench.trackers.memory import weights_bytes

    if job.fused_path is None:
        raise ValueError(
            f"arm {job.arm} runs the {job.layout} layout but its job names no checkpoint: build one first "
            "with prepare_fused_checkpoint (run_suite does), or use layout='split'"
        )
    directory = Path(job.fused_path)
    info = json.loads((directory / INFO_FILE).read_text())
    load = {"fused": load_fused, "packed": load_packed}[job.layout]
    fused = load(directory, device=device, dtype=torch_dtype(job.dtype, device.type))
    base_bytes = info.pop("base_parameters") * next(fused.parameters()).element_size()
    components = {"base": base_bytes, "separate": 0, "inserted": weights_bytes(fused) - base_bytes}
    info = {"layout": job.layout, "fused_checkpoint": str(directory), **info}
    return build_arm(job.arm, None, fused, engine=job.engine), components, info


def with_fused_checkpoint(config: Any, device: str | torch.device = "cpu") -> Any:
    """`config` with `fused_path` set to the (built or cached) layout checkpoint when the run needs one."""
    import dataclasses

    from otterbench.run.config import RunInputError

    try:
        directory = prepare_fused_checkpoint(config, device)
    except ValueError as error:  # an insertion the layout cannot be saved for: bad input, exit 2
        raise RunInputError(
            f"--layout={config.layout!r} cannot be built: {error}; or pass --layout split"
        ) from None
    return config if directory is None else dataclasses.replace(config, fused_path=str(directory))
