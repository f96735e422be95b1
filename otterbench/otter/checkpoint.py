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
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from otterbench.otter.fused import check_savable, fused_checkpoint_config
from otterbench.otter.layouts import LAYOUTS, layout_pieces
from otterbench.otter.packed import packed_config
from otterbench.otter.params import InsertedInit, Tensors
from otterbench.otter.spec import BaseDims, OtterSpec
from otterbench.otter.tensors import INDEX_FILE, FolderTensors, InitInserted, SavedInserted, StateTensors

MAX_SHARD_BYTES = 1 << 30


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
