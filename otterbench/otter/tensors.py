"""Where a layout's pieces read their tensors from: a safetensors folder or a state dict in memory (the base,
`layouts.BaseTensors`), and the inserted tensors, saved or freshly drawn (`layouts.InsertedTensors`).

The streamed checkpoint build (otter/checkpoint.py) and the layouts' loaders (fused.py, packed.py) all read
through these, one piece at a time.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from otterbench.otter.layouts import SIGNAL
from otterbench.otter.params import InsertedInit, Tensors

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"


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
