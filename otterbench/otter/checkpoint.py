"""Build a fused or packed checkpoint shard by shard, never holding the whole base or the whole result.

`build_checkpoint` reads the base's tensors one piece at a time (embedding, each decoder layer, norm and
heads: `layouts.layout_pieces`) on the run's device, builds that piece of the layout with the inserted
tensors (the spec's seeded init, or a saved insertion read tensor by tensor), and hands it to a
`ShardWriter` that flushes a safetensors shard whenever `max_shard_bytes` have gathered. Peak memory is one
base piece, its built piece and one unwritten shard: well under base + one layer for the default shard size.
The folder is what `load_fused` (a standard widened checkpoint plus the signal head) or `load_packed` read.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from otterbench.otter.layouts import LAYOUTS, SIGNAL, layout_pieces
from otterbench.otter.params import InsertedInit, Tensors
from otterbench.otter.spec import BaseDims, OtterSpec

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
MAX_SHARD_BYTES = 1 << 30


def _shard_names(directory: Path, file_name: str | None = None) -> dict[str, str]:
    """tensor name -> the file holding it: from `file_name`, else the folder's index or single file."""
    index = directory / INDEX_FILE
    if file_name is None and index.is_file():
        return dict(json.loads(index.read_text())["weight_map"])
    single = directory / (file_name or SINGLE_FILE)
    if not single.is_file():
        raise ValueError(f"{directory} holds neither {INDEX_FILE} nor {single.name}: no safetensors weights")
    with safe_open(str(single), framework="pt") as file:
        return dict.fromkeys(file.keys(), single.name)


def _read(directory: Path, where: dict[str, str], names: list[str], device: Any, dtype: Any) -> Tensors:
    """The named tensors, each file opened once and closed again (its mapping is released)."""
    by_file: dict[str, list[str]] = defaultdict(list)
    for name in names:
        by_file[where[name]].append(name)
    out: Tensors = {}
    for file_name, wanted in by_file.items():
        with safe_open(str(directory / file_name), framework="pt", device=str(device)) as file:
            for name in wanted:
                tensor = file.get_tensor(name)
                out[name] = tensor if dtype is None else tensor.to(dtype)
    return out


def read_shards(directory: str | Path, device: Any = "cpu", dtype: Any = None) -> Tensors:
    """Every tensor of a safetensors folder (sharded or single file) on `device`, cast to `dtype` if given."""
    directory = Path(directory)
    where = _shard_names(directory)
    return _read(directory, where, list(where), device, dtype)


class FolderTensors:
    """A saved model's safetensors folder read piece by piece (`layouts.BaseTensors`)."""

    def __init__(
        self, directory: str | Path, tied: bool, device: Any, dtype: torch.dtype, file_name: str | None = None
    ) -> None:
        self.directory, self.tied, self.device, self.dtype = Path(directory), tied, device, dtype
        self.where = _shard_names(self.directory, file_name)

    def read(self, names: list[str]) -> Tensors:
        return _read(self.directory, self.where, names, self.device, self.dtype)


class StateTensors:
    """A model already in memory (the tiny profile, tests) read through the same interface."""

    def __init__(self, state: Tensors, tied: bool, device: Any, dtype: torch.dtype) -> None:
        self.state, self.tied, self.device, self.dtype = state, tied, device, dtype

    def read(self, names: list[str]) -> Tensors:
        return {name: self.state[name].to(self.device, self.dtype) for name in names}


class SavedInserted:
    """Inserted tensors already made (a saved insertion, or an OtterModel's) (`layouts.InsertedTensors`)."""

    def __init__(self, source: FolderTensors | StateTensors) -> None:
        self.source = source

    def embed(self, base_embed: torch.Tensor) -> torch.Tensor:
        return self.source.read(["embed.weight"])["embed.weight"]

    def layer(self, index: int, base: Tensors) -> Tensors:
        prefix = f"layers.{index}."
        names = [name for name in self._names() if name.startswith(prefix)]
        return {name[len(prefix) :]: tensor for name, tensor in self.source.read(names).items()}

    def head(self, base_norm: torch.Tensor, base_lm_head: torch.Tensor) -> Tensors:
        return self.source.read(["norm", SIGNAL])

    def _names(self) -> list[str]:
        return list(self.source.where if isinstance(self.source, FolderTensors) else self.source.state)


class InitInserted:
    """Fresh inserted tensors per the spec's init (`params.InsertedInit`), as `insert_otter` makes them."""

    def __init__(self, init: InsertedInit) -> None:
        self.init = init

    def embed(self, base_embed: torch.Tensor) -> torch.Tensor:
        return self.init.embed(base_embed)

    def layer(self, index: int, base: Tensors) -> Tensors:
        return self.init.layer(index, base)

    def head(self, base_norm: torch.Tensor, base_lm_head: torch.Tensor) -> Tensors:
        return self.init.head(base_norm, base_lm_head)


class ShardWriter:
    """Gathers tensors and writes a safetensors shard whenever `max_bytes` have gathered; then the index."""

    def __init__(self, directory: Path, max_bytes: int = MAX_SHARD_BYTES) -> None:
        self.directory, self.max_bytes = directory, max_bytes
        self.pending: Tensors = {}
        self.pending_bytes = 0
        self.files: list[list[str]] = []
        self.total_bytes = 0

    def add(self, tensors: Tensors) -> None:
        for name, tensor in tensors.items():
            self.pending[name] = tensor.detach().contiguous().cpu()
            self.pending_bytes += tensor.numel() * tensor.element_size()
        if self.pending_bytes >= self.max_bytes:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        save_file(self.pending, str(self.directory / f".shard-{len(self.files)}"), metadata={"format": "pt"})
        self.files.append(list(self.pending))
        self.total_bytes += self.pending_bytes
        self.pending, self.pending_bytes = {}, 0

    def close(self) -> None:
        """Write what is left, name the shards `model-0000i-of-0000n.safetensors`, write the index."""
        self.flush()
        weight_map = {}
        for number, names in enumerate(self.files):
            final = f"model-{number + 1:05d}-of-{len(self.files):05d}.safetensors"
            (self.directory / f".shard-{number}").rename(self.directory / final)
            weight_map.update(dict.fromkeys(names, final))
        index = {"metadata": {"total_size": self.total_bytes}, "weight_map": weight_map}
        (self.directory / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")


def build_checkpoint(
    directory: str | Path,
    layout: str,
    base: FolderTensors | StateTensors,
    base_config: Any,
    inserted: SavedInserted | InitInserted,
    spec: OtterSpec,
    max_shard_bytes: int = MAX_SHARD_BYTES,
) -> Path:
    """Write the `layout` ("fused" or "packed") checkpoint of `base` plus `inserted` into `directory`."""
    from otterbench.otter.fused import check_savable, fused_checkpoint_config
    from otterbench.otter.packed import packed_config

    dims = BaseDims.from_config(base_config)
    spec.validate_for(dims)
    chosen = LAYOUTS[layout]
    config = {"fused": fused_checkpoint_config, "packed": packed_config}[layout](base_config, dims, spec)
    check_savable(config, dims.hidden_size, layout)  # before any shard is written
    config.dtype = base.dtype
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    writer = ShardWriter(directory, max_shard_bytes)
    for piece in layout_pieces(chosen, base, inserted, dims):
        writer.add(piece)
    writer.close()
    config.save_pretrained(directory)
    return directory


def fresh_inserted(base_config: Any, spec: OtterSpec, device: Any, dtype: torch.dtype) -> InitInserted:
    """The inserted tensors `insert_otter(base, spec)` would make, drawn piece by piece."""
    std = getattr(base_config, "initializer_range", 0.02)
    return InitInserted(InsertedInit(BaseDims.from_config(base_config), spec, std, device, dtype))
