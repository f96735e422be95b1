"""The inserted parameters themselves, and their three initialisations.

Each projection's new rows read the widened input `[n_o ; n_e]` (width d+dx), so one `nn.Linear` holds the
`[A | B]` block of docs/otter.md; output projections read `[attn_o ; attn_e]` / `[a_o ; a_e]` and hold `[C_o | C_e]`.
No zero block is stored: that is what keeps the split layout the smallest.
"""

from __future__ import annotations

import torch
from torch import nn

from otterbench.otter.spec import BaseDims, OtterSpec


class InsertedLayer(nn.Module):
    """What one decoder layer gains: two norm weights, extra attention heads, extra FFN neurons."""

    def __init__(self, dims: BaseDims, spec: OtterSpec) -> None:
        super().__init__()
        d, dx, hd = dims.hidden_size, spec.extra_hidden_size, dims.head_dim
        hx, gx, mx = spec.query_heads_for(dims), spec.extra_kv_heads, spec.extra_intermediate_size
        wide = d + dx
        self.input_norm = nn.Parameter(torch.ones(dx))
        self.post_norm = nn.Parameter(torch.ones(dx))
        self.q = nn.Linear(wide, hx * hd, bias=dims.attention_bias)  # [A|B]: q_e = A n_o + B n_e
        self.k = nn.Linear(wide, gx * hd, bias=dims.attention_bias)
        self.v = nn.Linear(wide, gx * hd, bias=dims.attention_bias)
        self.o = nn.Linear((dims.num_heads + hx) * hd, dx, bias=dims.o_bias)  # [C_o|C_e]
        self.gate = nn.Linear(wide, mx, bias=dims.mlp_bias)
        self.up = nn.Linear(wide, mx, bias=dims.mlp_bias)
        self.down = nn.Linear(dims.intermediate_size + mx, dx, bias=dims.mlp_bias)  # [D_o|D_e]


class InsertedParameters(nn.Module):
    """Every tensor Otter adds to a base model; nothing else (its state dict is the adapter file)."""

    def __init__(self, dims: BaseDims, spec: OtterSpec) -> None:
        super().__init__()
        dx = spec.extra_hidden_size
        self.embed = nn.Embedding(dims.vocab_size, dx)
        self.layers = nn.ModuleList(InsertedLayer(dims, spec) for _ in range(dims.num_layers))
        self.norm = nn.Parameter(torch.ones(dx))
        self.signal_head = nn.Linear(dx, spec.signal_size(dims), bias=False)


def _cycle(n: int, period: int) -> torch.Tensor:
    """Indices 0..n-1 taken modulo `period`: which original unit each extra unit copies."""
    return torch.arange(n) % period


def _head_rows(n_heads: int, period_heads: int, head_dim: int) -> torch.Tensor:
    """Row indices of the original projection for `n_heads` extra heads copying heads 0,1,.. cyclically."""
    heads = _cycle(n_heads, period_heads)
    return (heads[:, None] * head_dim + torch.arange(head_dim)[None, :]).reshape(-1)


def _copy_rows(target: nn.Linear, source: nn.Linear, rows: torch.Tensor) -> None:
    """target = [source[rows] | 0]: the copied rows read n_o exactly as the originals; the n_e block is 0."""
    width = source.weight.shape[1]
    target.weight.zero_()
    target.weight[:, :width] = source.weight[rows]
    if target.bias is not None:
        target.bias.copy_(source.bias[rows] if source.bias is not None else torch.zeros_like(target.bias))


@torch.no_grad()
def initialise(inserted: InsertedParameters, base_lm: nn.Module, dims: BaseDims, spec: OtterSpec) -> None:
    """Fill the inserted tensors per `spec.init`; the base model is only read."""
    if spec.init == "copy":
        _init_copy(inserted, base_lm, dims, spec)
        return
    generator = torch.Generator().manual_seed(spec.seed)
    std = getattr(base_lm.config, "initializer_range", 0.02)
    for name, param in inserted.named_parameters():
        if name.endswith("norm") or name == "norm":
            param.fill_(1.0)
        elif spec.init == "zeros" or name.endswith("bias"):
            param.zero_()
        else:
            sample = torch.randn(param.shape, generator=generator) * std
            param.copy_(sample.to(param.dtype))


def _init_copy(inserted: InsertedParameters, base_lm: nn.Module, dims: BaseDims, spec: OtterSpec) -> None:
    """Extra channels/heads/neurons start as copies of the first original ones.

    With dx <= d the extra stream then equals the first dx original channels at every layer: the copied
    rows read only n_o (their B blocks are 0) and C_e, D_e start at 0.
    """
    inner = base_lm.model
    dx, hd = spec.extra_hidden_size, dims.head_dim
    channels = _cycle(dx, dims.hidden_size)
    inserted.embed.weight.copy_(inner.embed_tokens.weight[:, channels])
    inserted.norm.copy_(inner.norm.weight[channels])
    inserted.signal_head.weight.copy_(
        base_lm.lm_head.weight[: inserted.signal_head.out_features][:, channels]
    )
    hx, gx = spec.query_heads_for(dims), spec.extra_kv_heads
    for extra, layer in zip(inserted.layers, inner.layers):
        attn, mlp = layer.self_attn, layer.mlp
        extra.input_norm.copy_(layer.input_layernorm.weight[channels])
        extra.post_norm.copy_(layer.post_attention_layernorm.weight[channels])
        _copy_rows(extra.q, attn.q_proj, _head_rows(hx, dims.num_heads, hd))
        _copy_rows(extra.k, attn.k_proj, _head_rows(gx, dims.num_kv_heads, hd))
        _copy_rows(extra.v, attn.v_proj, _head_rows(gx, dims.num_kv_heads, hd))
        _copy_rows(extra.o, attn.o_proj, channels)
        neurons = _cycle(spec.extra_intermediate_size, dims.intermediate_size)
        _copy_rows(extra.gate, mlp.gate_proj, neurons)
        _copy_rows(extra.up, mlp.up_proj, neurons)
        _copy_rows(extra.down, mlp.down_proj, channels)
