"""The fused Otter checkpoint a run measures: built once, outside every measured process, then loaded as deployed.

`prepare_fused_checkpoint` runs in the parent before any arm starts: it loads the base (on the CPU), inserts
Otter (fresh, or the distilled insertion of `--otter DIR`), fuses it and saves the widened checkpoint with
`save_fused`. The Otter arm's process then calls `load_fused_arm`, which loads that checkpoint with
`load_fused` and nothing else, so its measured memory holds exactly what a deployment holds.

Checkpoints are cached under `<out>/fused-cache/<key>/`: the key hashes the base's source and config (plus the
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
from pathlib import Path
from typing import Any

import torch

from otterbench.arms.registry import ARM_ROLES
from otterbench.dtypes import torch_dtype

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
    """A fused-layout run with at least one Otter arm."""
    return config.layout == "fused" and any(ARM_ROLES[arm] == "otter" for arm in config.arms)


def _build(config: Any, directory: Path) -> None:
    """Load the base on the CPU, insert Otter, fuse, save; write the run info beside the checkpoint."""
    from otterbench.models.loading import load_model_set
    from otterbench.otter import save_fused
    from otterbench.otter.io import otter_for_run

    models = load_model_set(
        config.profile,
        needs={"base"},
        overrides=config.overrides,
        profiles=config.suite.profiles,
        device="cpu",
        dtype=torch_dtype(config.dtype),  # the run's dtype even for a GPU run: fusing is concatenation
    )
    base = models.base
    otter, distilled = otter_for_run(base, config.otter_path, config.otter_ratio)
    save_fused(otter.to_fused().eval(), directory)
    info = {
        "distilled": distilled,
        "path": config.otter_path,
        "spec": otter.spec.to_dict(),
        "inserted_parameters": otter.num_inserted_parameters(),
        "base_parameters": sum(p.numel() for p in base.parameters()),  # tied tensors once
    }
    (directory / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")


def prepare_fused_checkpoint(config: Any) -> Path | None:
    """The fused checkpoint folder for `config` (built now if not cached); None when the run needs none."""
    if not needs_fused_checkpoint(config):
        return None
    directory = Path(config.out_dir) / CACHE_DIR / fused_cache_key(config)
    if (directory / INFO_FILE).is_file():
        return directory
    directory.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".building-", dir=directory.parent))
    try:
        with torch.inference_mode():
            _build(config, scratch)
        gc.collect()  # the base and split models built here are gone before any arm starts
        scratch.rename(directory)  # complete checkpoints only: a crash leaves a .building- folder
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return directory


def load_fused_arm(job: Any, device: torch.device) -> tuple[Any, dict[str, int], dict[str, Any]]:
    """The Otter arm's models as deployed: the fused checkpoint alone; its weights by component; its info."""
    from otterbench.arms import build_arm
    from otterbench.otter import load_fused
    from otterbench.trackers.memory import weights_bytes

    if job.fused_path is None:
        raise ValueError(
            f"arm {job.arm} runs the fused layout but its job names no fused checkpoint: build one first "
            "with prepare_fused_checkpoint (run_suite does), or use layout='split'"
        )
    directory = Path(job.fused_path)
    info = json.loads((directory / INFO_FILE).read_text())
    fused = load_fused(directory, device=device, dtype=torch_dtype(job.dtype, device.type))
    base_bytes = info.pop("base_parameters") * next(fused.parameters()).element_size()
    components = {"base": base_bytes, "separate": 0, "inserted": weights_bytes(fused) - base_bytes}
    info = {"layout": "fused", "fused_checkpoint": str(directory), **info}
    return build_arm(job.arm, None, fused, engine=job.engine), components, info


def with_fused_checkpoint(config: Any) -> Any:
    """`config` with `fused_path` set to the (built or cached) fused checkpoint when the run needs one."""
    import dataclasses

    from otterbench.run.config import RunInputError

    try:
        directory = prepare_fused_checkpoint(config)
    except ValueError as error:  # an insertion the fused layout cannot be saved for: bad input, exit 2
        raise RunInputError(f"--layout='fused' cannot be built: {error}; or pass --layout split") from None
    return config if directory is None else dataclasses.replace(config, fused_path=str(directory))
