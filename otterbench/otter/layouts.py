"""The engine-ready layouts' tensors, built piece by piece from the base's tensors and the inserted ones.

One home for what each layout stores, shared by the in-memory conversions (`OtterModel.to_fused`,
`to_packed`) and the streamed checkpoint builder (otter/checkpoint.py), so both give the same tensors:
- fused: every projection is the block matrix `[[W, 0], [A, B]]` (zero blocks stored), the embedding
  `[E | E_e]`, the lm_head `[W_lm | 0]` (untied), the signal head in its own file.
- packed: every projection is `[W; A]` over the original input plus `extra_weight = B` over the extra input
  (no zero block), the embedding keeps `E` and adds `extra_weight = E_e`, the lm_head is the base's own
  (tied to `E` where the base ties it), the signal head is stored with the rest.
Norms are `[w; w_e]` in both. Pieces are keyed as in a transformers state dict.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import torch

from otterbench.otter.params import NORMS, PROJECTIONS, Tensors
from otterbench.otter.spec import BaseDims

SIGNAL = "signal_head.weight"
EXTRA = "extra_weight"  # the packed layout's small block: B (projections) or E_e (embedding)


class BaseTensors(Protocol):
    """The base model's tensors, read a piece at a time (a safetensors folder or a state dict)."""

    tied: bool  # the lm_head is the embedding table

    def read(self, names: list[str]) -> Tensors: ...


class InsertedTensors(Protocol):
    """The inserted tensors, in `InsertedParameters`' order: embedding, layers 0..L-1, then the head."""

    def embed(self, base_embed: torch.Tensor) -> torch.Tensor: ...

    def layer(self, index: int, base: Tensors) -> Tensors: ...

    def head(self, base_norm: torch.Tensor, base_lm_head: torch.Tensor) -> Tensors: ...


def base_layer_names(layer: int, dims: BaseDims) -> list[str]:
    """A base layer's tensor names (full keys), biases where its projections carry them."""
    prefix = f"model.layers.{layer}."
    names = [f"{prefix}{source}.weight" for source in (*PROJECTIONS.values(), *NORMS.values())]
    bias = {"q": dims.attention_bias, "k": dims.attention_bias, "v": dims.attention_bias, "o": dims.o_bias}
    return names + [
        f"{prefix}{source}.bias" for short, source in PROJECTIONS.items() if bias.get(short, dims.mlp_bias)
    ]


def _fused_projection(weight: torch.Tensor, inserted: torch.Tensor) -> Tensors:
    """[[W, 0], [A, B]] from W [out, in] and the inserted rows [A|B] [out_x, in+in_x]."""
    zeros = weight.new_zeros(weight.shape[0], inserted.shape[1] - weight.shape[1])
    return {"weight": torch.cat([torch.cat([weight, zeros], dim=1), inserted], dim=0)}


def _packed_projection(weight: torch.Tensor, inserted: torch.Tensor) -> Tensors:
    """[W; A] [out+out_x, in] and B [out_x, in_x]: the inserted rows split at the original input width."""
    width = weight.shape[1]
    return {
        "weight": torch.cat([weight, inserted[:, :width]], dim=0),
        EXTRA: inserted[:, width:].contiguous(),
    }


def _fused_embed(base_embed: torch.Tensor, extra_embed: torch.Tensor) -> Tensors:
    return {"model.embed_tokens.weight": torch.cat([base_embed, extra_embed], dim=1)}


def _packed_embed(base_embed: torch.Tensor, extra_embed: torch.Tensor) -> Tensors:
    return {"model.embed_tokens.weight": base_embed, f"model.embed_tokens.{EXTRA}": extra_embed}


def _fused_lm_head(lm_head: torch.Tensor, extra_hidden: int, tied: bool) -> Tensors:
    """[W_lm | 0]: a widened, untied head reading the first d channels."""
    return {"lm_head.weight": torch.cat([lm_head, lm_head.new_zeros(lm_head.shape[0], extra_hidden)], dim=1)}


def _packed_lm_head(lm_head: torch.Tensor, extra_hidden: int, tied: bool) -> Tensors:
    """The base's own head (reading the first d channels); nothing stored where it is the embedding."""
    return {} if tied else {"lm_head.weight": lm_head}


@dataclass(frozen=True)
class Layout:
    """How one layout lays out the same parameters: its projections, embedding and lm_head."""

    name: str
    projection: Callable[[torch.Tensor, torch.Tensor], Tensors]
    embed: Callable[[torch.Tensor, torch.Tensor], Tensors]
    lm_head: Callable[[torch.Tensor, int, bool], Tensors]

    def layer(self, base: Tensors, inserted: Tensors) -> Tensors:
        """One decoder layer's tensors from the base layer's and the inserted layer's (relative keys)."""
        out: Tensors = {}
        for short, source in PROJECTIONS.items():
            for key, tensor in self.projection(base[f"{source}.weight"], inserted[f"{short}.weight"]).items():
                out[f"{source}.{key}"] = tensor
            if f"{source}.bias" in base:
                out[f"{source}.bias"] = torch.cat([base[f"{source}.bias"], inserted[f"{short}.bias"]])
        for short, source in NORMS.items():
            out[f"{source}.weight"] = torch.cat([base[f"{source}.weight"], inserted[short]])
        return out

    def head(self, base_norm: torch.Tensor, lm_head: torch.Tensor, inserted: Tensors, tied: bool) -> Tensors:
        """The final norm, the lm_head and the signal head."""
        extra_norm = inserted["norm"]
        out = {"model.norm.weight": torch.cat([base_norm, extra_norm]), SIGNAL: inserted[SIGNAL]}
        return {**out, **self.lm_head(lm_head, extra_norm.shape[0], tied)}


# both store the signal head among the checkpoint's tensors (SIGNAL), where an engine's loader finds it
FUSED = Layout("fused", _fused_projection, _fused_embed, _fused_lm_head)
PACKED = Layout("packed", _packed_projection, _packed_embed, _packed_lm_head)
LAYOUTS = {layout.name: layout for layout in (FUSED, PACKED)}


def layout_pieces(
    layout: Layout, base: BaseTensors, inserted: InsertedTensors, dims: BaseDims
) -> Iterator[Tensors]:
    """The layout's tensors a piece at a time: the embedding, each decoder layer, then norm and heads.

    Only one piece's base tensors are read at a time, so a caller writing each piece out holds at most the
    base's largest piece plus what it has not yet written.
    """
    embed = base.read(["model.embed_tokens.weight"])["model.embed_tokens.weight"]
    piece = layout.embed(embed, inserted.embed(embed))
    del embed
    yield piece
    for index in range(dims.num_layers):
        del piece  # the consumer has it: drop it before the next layer is read
        prefix = f"model.layers.{index}."
        read = base.read(base_layer_names(index, dims))
        relative = {name[len(prefix) :]: tensor for name, tensor in read.items()}
        del read
        built = layout.layer(relative, inserted.layer(index, relative))
        del relative
        piece = {prefix + name: tensor for name, tensor in built.items()}
        del built
        yield piece
    del piece
    ends = base.read(["model.norm.weight", "model.embed_tokens.weight" if base.tied else "lm_head.weight"])
    norm, lm_head = ends.pop("model.norm.weight"), ends.popitem()[1]
    yield layout.head(norm, lm_head, inserted.head(norm, lm_head), base.tied)
