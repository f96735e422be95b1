"""The engine-ready Otter checkpoint a run measures (fused or packed): built once, outside every measured
process, then loaded as deployed.

`prepare_fused_checkpoint` runs in the parent before any arm starts: it streams the base's weights tensor by
tensor from its safetensors files onto the run's device, adds Otter's inserted tensors (fresh from the
spec's seeded init, or the distilled insertion of `--otter DIR`, read tensor by tensor) and writes the
layout's checkpoint shard by shard (`otter.checkpoint.build_checkpoint`): the base and the result are never
whole in memory. A base with no safetensors folder (the tiny profile) is built in memory and read the same
way. The Otter arm's process then loads that folder with `load_fused` or `load_packed` and nothing else
(run/arm_models.py), so its measured memory holds exactly what a deployment holds.

Checkpoints are cached under `<out>/fused-cache/<key>/`: the key hashes the layout, the base's source and config (plus the
names, sizes and mtimes of its weight files for a local folder; the seed for the tiny profile), the Otter
source (ratio and the tensor-parallel size it is sized for, or the distilled folder's config and weights'
size and mtime) and the dtype, so a later run
with the same inputs reuses it and a changed input builds a new one.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

from otterbench.arms.registry import arm_info
from otterbench.dtypes import torch_dtype
from otterbench.models.loading import load_models
from otterbench.models.sources import TINY, load_config, local_folder
from otterbench.otter.spec import CHECKPOINT_LAYOUTS
from otterbench.run.catalogue import Catalogue, ModelEntry
from otterbench.run.config import RunConfig, RunInputError
from otterbench.run.locks import file_lock

CACHE_DIR = "fused-cache"
INFO_FILE = "otter_run_info.json"  # what the run records about the insertion, beside the checkpoint


def _files_signature(folder: Path, patterns: tuple[str, ...]) -> list[tuple[str, int, int]]:
    """(name, size, mtime_ns) of the weight files in `folder`: a cheap stand-in for hashing gigabytes."""
    found = sorted(p for pattern in patterns for p in folder.glob(pattern))
    return [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in found]


def fused_cache_key(config: RunConfig, base: ModelEntry) -> str:
    """A short hash of everything the layout's checkpoint depends on (see the module docstring)."""
    from otterbench.otter.fused import FORMAT

    insertion = config.insertion
    payload: dict[str, Any] = {
        "layout": insertion.layout,
        "format": FORMAT,  # a checkpoint cached in an older format is rebuilt, never loaded
        "base": base.fingerprint,
        "dtype": config.dtype,
        "ratio": None if insertion.path else insertion.ratio,
    }
    if (
        not insertion.path and config.backend.tensor_parallel_size > 1
    ):  # the fresh spec is sized for the ranks
        payload["tensor_parallel_size"] = config.backend.tensor_parallel_size
    if Path(base.source).is_dir():
        payload["base_files"] = _files_signature(Path(base.source), ("*.safetensors", "*.bin"))
    if insertion.path:
        folder = Path(insertion.path).resolve()
        payload["otter"] = [str(folder), _files_signature(folder, ("*.json", "*.safetensors"))]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def needs_fused_checkpoint(config: RunConfig) -> bool:
    """A run of an engine-ready layout (fused, packed) with at least one Otter arm."""
    layout = config.insertion.layout
    return layout in CHECKPOINT_LAYOUTS and any(arm_info(arm).role == "otter" for arm in config.arms)


def _base_folder(source: str) -> Path | None:
    """The local folder holding the base's safetensors (a path, or a hub id's cached snapshot), else None."""
    from otterbench.otter.tensors import INDEX_FILE, SINGLE_FILE

    folder = local_folder(source)  # None: build the base in memory instead
    if folder is None:
        return None
    return folder if (folder / INDEX_FILE).is_file() or (folder / SINGLE_FILE).is_file() else None


def _base_tensors(source: str, device: torch.device, dtype: torch.dtype) -> tuple[Any, Any, int]:
    """The base's config, its tensors read piece by piece on `device`, and its parameter count."""
    from transformers import AutoModelForCausalLM

    from otterbench.otter.tensors import FolderTensors, StateTensors

    folder = None if source == TINY else _base_folder(source)
    if folder is None:  # the tiny profile, or weights not in safetensors: build it (small) in memory
        base = load_models({"base": source}, device=device, dtype=dtype)["base"]
        tied = bool(getattr(base.config, "tie_word_embeddings", False))
        count = sum(p.numel() for p in base.parameters())  # tied tensors once
        return base.config, StateTensors(base.state_dict(), tied, device, dtype), count
    base_config = load_config(str(folder), "base")
    with torch.device("meta"):  # the parameter count (tied tensors once) without any weight
        count = sum(p.numel() for p in AutoModelForCausalLM.from_config(base_config).parameters())
    tied = bool(getattr(base_config, "tie_word_embeddings", False))
    return base_config, FolderTensors(folder, tied, device, dtype), count


def _inserted(
    config: RunConfig, base_config: Any, device: torch.device, dtype: torch.dtype
) -> tuple[Any, Any, bool]:
    """The spec, the inserted tensors' source and whether they were distilled."""
    from otterbench.otter import OtterSpec
    from otterbench.otter.checkpoint import fresh_inserted
    from otterbench.otter.io import WEIGHTS_FILE, read_otter_config
    from otterbench.otter.tensors import FolderTensors, SavedInserted

    path = config.insertion.path
    if not path:
        ranks = config.backend.tensor_parallel_size  # a fresh insertion is sized for the ranks that split it
        spec = OtterSpec.from_ratio(
            base_config, config.insertion.ratio, signal="vocab", tensor_parallel_size=ranks
        )
        return spec, fresh_inserted(base_config, spec, device, dtype), False
    record = read_otter_config(path)
    weights = FolderTensors(path, False, device, dtype, file_name=WEIGHTS_FILE)
    distilled = bool(record.get("metadata", {}).get("distilled", False))
    return OtterSpec.from_dict(record["spec"]), SavedInserted(weights), distilled


def _build(config: RunConfig, base_source: str, directory: Path, device: torch.device) -> None:
    """Stream the base and the insertion into the layout's checkpoint; write the run info beside it."""
    from otterbench.otter import count_inserted_parameters
    from otterbench.otter.checkpoint import build_checkpoint
    from otterbench.otter.spec import BaseDims

    started = time.perf_counter()
    dtype = torch_dtype(config.dtype, device.type)
    base_config, base, base_parameters = _base_tensors(base_source, device, dtype)
    spec, inserted, distilled = _inserted(config, base_config, device, dtype)
    build_checkpoint(directory, config.insertion.layout, base, base_config, inserted, spec)
    info = {
        "distilled": distilled,
        "path": config.insertion.path,
        "spec": spec.to_dict(),
        "inserted_parameters": count_inserted_parameters(BaseDims.from_config(base_config), spec),
        "base_parameters": base_parameters,
        "checkpoint_build_s": time.perf_counter() - started,  # read, build and write, on `device`
    }
    (directory / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")


def prepare_fused_checkpoint(
    config: RunConfig, catalogue: Catalogue, device: str | torch.device = "cpu"
) -> Path | None:
    """The layout checkpoint folder for `config` (built on `device` now if not cached); None when the run
    needs none.

    Runs sharing an --out share the cache: the build holds a lock per key, so a second run waits for the
    first one's checkpoint and reuses it instead of building (and renaming) its own.
    """
    if not needs_fused_checkpoint(config):
        return None
    directory = Path(config.out_dir) / CACHE_DIR / fused_cache_key(config, catalogue["base"])
    if (directory / INFO_FILE).is_file():
        return directory
    with file_lock(directory.parent / f"{directory.name}.lock"):
        if not (directory / INFO_FILE).is_file():  # another run may have built it while this one waited
            _build_into(config, catalogue["base"].source, directory, device)
    return directory


def _build_into(config: RunConfig, base_source: str, directory: Path, device: str | torch.device) -> None:
    """Build in a scratch folder, then rename it into place: complete checkpoints only."""
    scratch = Path(tempfile.mkdtemp(prefix=".building-", dir=directory.parent))
    try:
        with torch.inference_mode():
            _build(config, base_source, scratch, torch.device(device))
        gc.collect()  # what the build held is gone before any arm starts
        if torch.device(device).type == "cuda":
            torch.cuda.empty_cache()
        scratch.rename(directory)  # complete checkpoints only: a crash leaves a .building- folder
    except OSError:
        shutil.rmtree(scratch, ignore_errors=True)
        if not (directory / INFO_FILE).is_file():
            raise  # else a build outside the lock (a file system without locks) got there first: use it
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def with_fused_checkpoint(
    config: RunConfig, catalogue: Catalogue, device: str | torch.device = "cpu"
) -> RunConfig:
    """`config` with `insertion.fused_path` set to the (built or cached) layout checkpoint when it needs one."""
    try:
        directory = prepare_fused_checkpoint(config, catalogue, device)
    except (OSError, SafetensorError) as error:  # no room, or the folder went away: one line, exit 2
        where = Path(config.out_dir) / CACHE_DIR
        raise RunInputError(
            f"--out={str(config.out_dir)!r}: the {config.insertion.layout} checkpoint could not be written "
            f"under {where} ({getattr(error, 'strerror', None) or error}): free some space, pass another "
            "--out, or pass --layout split"
        ) from None
    except ValueError as error:  # an insertion the layout cannot be saved for: bad input, exit 2
        raise RunInputError(
            f"--layout={config.insertion.layout!r} cannot be built: {error}; or pass --layout split"
        ) from None
    if directory is None:
        return config
    insertion = dataclasses.replace(config.insertion, fused_path=str(directory))
    return dataclasses.replace(config, insertion=insertion)
