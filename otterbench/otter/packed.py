"""The packed layout: engine-ready like fused, but storing only the inserted parameters (no zero blocks).

Named for what each projection does: the rows that read the same input are packed into one matrix. With
`x = [x_o ; x_e]` and the fused block `[[W, 0], [A, B]]`, the packed projection computes

    y = [W; A] x_o            one GEMM over the original input: [original ; extra] outputs
    y[out:] += B x_e          one small GEMM, extra -> extra

so it reads W, A and B once and never the zero block. The model is the base's own family at the widened
sizes (d+dx hidden, h+hx heads, g+gx kv heads, m+mx FFN), with `PackedLinear` projections, the embedding
`[E(ids) ; E_e(ids)]` from two tables, the base's own lm_head reading the first d channels and the
variance-over-d norms (`PrefixRMSNorm`). Attention, RoPE, caches and the decode step are the family's
own, so it runs through the same engine code as the fused layout. Its original outputs come from GEMMs
whose reduction (over d, over h*hd, over m) is the base's; only the number of output rows differs, which
a BLAS may or may not block differently: its deviation is measured, never assumed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM

from otterbench.otter.fused import (
    CONFIG_FIELD,
    FusedOtterModel,
    PrefixRMSNorm,
    layout_state_dict,
    widened_config,
)
from otterbench.otter.layouts import EXTRA, SIGNAL
from otterbench.otter.params import NORMS, PROJECTIONS, Tensors
from otterbench.otter.spec import BaseDims, OtterSpec
from otterbench.otter.support import check_supported
from otterbench.otter.tensors import read_shards

LAYOUT_FIELD = "otter_layout"
ARCHITECTURE = "OtterPackedForCausalLM"  # no inference engine knows it: none can load this folder wrongly


def _parameter(tensor: torch.Tensor) -> nn.Parameter:
    return tensor if isinstance(tensor, nn.Parameter) else nn.Parameter(tensor, requires_grad=False)


class PackedLinear(nn.Module):
    """`[W; A]` over the first `in` input channels, plus `B` over the rest into the last `out_x` outputs.

    Without `extra_weight` it is a plain projection of the first `in` channels (the lm_head over `n_o`).
    """

    def __init__(self, weight: torch.Tensor, extra_weight: torch.Tensor | None, bias: torch.Tensor | None):
        super().__init__()
        self.weight = _parameter(weight)  # [out+out_x, in]
        self.extra_weight = None if extra_weight is None else _parameter(extra_weight)  # [out_x, in_x]
        self.bias = None if bias is None else _parameter(bias)
        self.in_features = self.weight.shape[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        original = x[
            ..., : self.in_features
        ].contiguous()  # the same contiguous input the base projection reads
        y = F.linear(original, self.weight, self.bias)  # [..., out+out_x]
        if self.extra_weight is not None:
            y[..., -self.extra_weight.shape[0] :] += F.linear(x[..., self.in_features :], self.extra_weight)
        return y


class PackedEmbedding(nn.Module):
    """ids -> [E(ids) ; E_e(ids)] from the base's table and the extra one (no widened copy of E)."""

    def __init__(self, weight: torch.Tensor, extra_weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = _parameter(weight)
        self.extra_weight = _parameter(extra_weight)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [F.embedding(input_ids, self.weight), F.embedding(input_ids, self.extra_weight)], dim=-1
        )


class PackedOtterModel(FusedOtterModel):
    """The packed layout: the family's causal LM at widened sizes with packed projections, plus the signal head.

    It runs exactly as the fused layout does (same forward, same caches), so engines and arms treat both alike.
    """

    layout = "packed"


def packed_config(base_config: Any, dims: BaseDims, spec: OtterSpec) -> Any:
    """The widened config a packed checkpoint declares (the base's tie of lm_head to embedding kept)."""
    config = widened_config(base_config, dims, spec)
    config.tie_word_embeddings = bool(getattr(base_config, "tie_word_embeddings", False))
    config.architectures = [ARCHITECTURE]
    setattr(config, LAYOUT_FIELD, "packed")
    return config


def _projection(tensors: Tensors, key: str) -> PackedLinear:
    return PackedLinear(tensors[f"{key}.weight"], tensors[f"{key}.{EXTRA}"], tensors.get(f"{key}.bias"))


def _norm(weight: torch.Tensor, like: nn.Module, original_size: int) -> PrefixRMSNorm:
    eps = getattr(like, "variance_epsilon", getattr(like, "eps", 1e-6))
    return PrefixRMSNorm(weight, eps, original_size)


@torch.no_grad()
def packed_model(config: Any, tensors: Tensors, device: torch.device | str) -> PackedOtterModel:
    """The packed model holding `tensors` (a packed state dict, consumed) as its parameters, on `device`."""
    with torch.device("meta"):  # the family's structure only; every weight comes from `tensors`
        model = AutoModelForCausalLM.from_config(config, attn_implementation=config._attn_implementation)
    check_supported(model)
    d = getattr(config, CONFIG_FIELD)
    inner = model.model
    inner.embed_tokens = PackedEmbedding(
        tensors.pop("model.embed_tokens.weight"), tensors.pop(f"model.embed_tokens.{EXTRA}")
    )
    for index, layer in enumerate(inner.layers):
        prefix = f"model.layers.{index}."
        for source in PROJECTIONS.values():
            parent, name = source.split(".")
            setattr(getattr(layer, parent), name, _projection(tensors, prefix + source))
        for source in NORMS.values():
            setattr(layer, source, _norm(tensors[f"{prefix}{source}.weight"], getattr(layer, source), d))
    inner.norm = _norm(tensors["model.norm.weight"], inner.norm, d)
    head = tensors.get("lm_head.weight", inner.embed_tokens.weight)  # absent where the base ties them
    model.lm_head = PackedLinear(head, None, None)
    inner.rotary_emb = type(inner.rotary_emb)(config=config).to(device)  # computed, not stored
    signal = nn.Linear(tensors[SIGNAL].shape[1], tensors[SIGNAL].shape[0], bias=False, device="meta")
    signal.weight = _parameter(tensors[SIGNAL])
    left = [name for name, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise ValueError(f"packed checkpoint lacks tensors for {left[:4]}: it was not written by otterbench")
    spec = OtterSpec.from_dict(config.otter_spec)
    return PackedOtterModel(model, signal, d, spec).to(device).eval()


def load_packed(
    directory: str | Path, *, device: str | torch.device = "cpu", dtype: Any = None
) -> PackedOtterModel:
    """One call: a packed checkpoint folder (config.json + safetensors shards) as a PackedOtterModel."""
    directory = Path(directory)
    path = directory / "config.json"
    saved = json.loads(path.read_text()) if path.is_file() else {}
    if saved.get(LAYOUT_FIELD) != "packed" or not isinstance(saved.get(CONFIG_FIELD), int):
        raise ValueError(
            f"{directory} is not a packed Otter checkpoint: its config.json lacks {LAYOUT_FIELD}='packed'"
        )
    config = AutoConfig.from_pretrained(directory, local_files_only=True)
    tensors = read_shards(directory, device, dtype)
    return packed_model(config, tensors, device)


def pack(otter: nn.Module) -> PackedOtterModel:
    """The packed layout of a split OtterModel (shares the base's embedding and lm_head tensors)."""
    config = packed_config(otter.config, otter.dims, otter.spec)
    config._attn_implementation = otter.config._attn_implementation
    device = otter.base_model.lm_head.weight.device
    return packed_model(config, layout_state_dict(otter, "packed"), device)
