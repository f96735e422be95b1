"""A model's weights named cheaply, from its files: what an Otter insertion records of the base it was
trained on, so a run refuses another base of the same shape (a fine-tune, another seed) before loading it.

The hash covers every tensor of the model's safetensors files by name, dtype and shape, the whole of each
1-D tensor (norms, biases) and the first row of every other one: a fine-tune that touches any projection,
embedding or norm changes it. safetensors memory-maps its files and slices read only the bytes they name,
so at Llama-2-7B scale (291 tensors, 12.6 GiB in bf16) it reads 2.7 MiB of tensor data (counted from the
shapes, one row of each) plus the headers.
A model without safetensors files (a pytorch_model.bin, a hub id not in the cache) has no fingerprint: None,
and nothing is checked; nor has the tiny profile's, built in memory from a fixed seed (a folder it was saved
to hashes as any other, and an in-memory model's tensors are not a file's: comparing the two would refuse
the same weights).
"""

from __future__ import annotations

import hashlib
from contextlib import ExitStack
from typing import Any

import torch
from safetensors import safe_open

from otterbench.models.sources import TINY, local_folder

_HEX = 16  # a 64-bit prefix of the SHA-256: enough to tell models apart, short enough to read in a message


def weights_fingerprint(source: str) -> str | None:
    """A short hash of `source`'s weights read from its safetensors files (see the module); None when it has
    none on this machine (or is the tiny profile)."""
    folder = None if source == TINY else local_folder(source)
    files = sorted(folder.glob("*.safetensors")) if folder is not None else []
    if not files:
        return None
    digest = hashlib.sha256()
    with ExitStack() as stack:
        handles = [stack.enter_context(safe_open(str(file), framework="pt")) for file in files]
        where = {name: handle for handle in handles for name in handle.keys()}  # noqa: SIM118
        for name in sorted(where):  # by name: the hash does not depend on how the weights are sharded
            digest.update(_tensor_summary(where[name], name))
    return digest.hexdigest()[:_HEX]


def _tensor_summary(handle: Any, name: str) -> bytes:
    """name, dtype, shape and the bytes of the whole (1-D or scalar) or of the first row (the rest)."""
    part = handle.get_slice(name)
    shape = part.get_shape()
    values = handle.get_tensor(name) if len(shape) <= 1 else part[:1]
    raw = values.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    return f"{name}|{part.get_dtype()}|{shape}|".encode() + raw
