"""The inserted parameters themselves, and their three initialisations.

Each projection's new rows read the widened input `[n_o ; n_e]` (width d+dx), so one `nn.Linear` holds the
`[A | B]` block of docs/otter.md; output projections read `[attn_o ; attn_e]` / `[a_o ; a_e]` and hold `[C_o | C_e]`.
No zero block is stored: that is what keeps the split layout the smallest.
"""

from __future__ import annotations

from typing import Any

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


# an inserted layer's projection -> the base layer's projection it copies in `init="copy"`
PROJECTIONS = {
    "q": "self_attn.q_proj",
    "k": "self_attn.k_proj",
    "v": "self_attn.v_proj",
    "o": "self_attn.o_proj",
    "gate": "mlp.gate_proj",
    "up": "mlp.up_proj",
    "down": "mlp.down_proj",
}
NORMS = {"input_norm": "input_layernorm", "post_norm": "post_attention_layernorm"}
Tensors = dict[str, torch.Tensor]


def _shapes(module: nn.Module) -> dict[str, torch.Size]:
    return {name: param.shape for name, param in module.named_parameters()}


class InsertedInit:
    """The inserted tensors per `spec.init`, drawn piece by piece from the base's tensors (only read).

    Pieces come in `InsertedParameters`' parameter order (embedding, layers 0..L-1, final norm and signal
    head) from one seeded generator, so a checkpoint built layer by layer holds exactly the tensors of
    `insert_otter` on the whole model. Base tensors are keyed as in a transformers state dict, relative to
    `model.` for `embed` and to `model.layers.{i}.` for `layer`.
    """

    def __init__(self, dims: BaseDims, spec: OtterSpec, std: float, device: Any, dtype: torch.dtype) -> None:
        self.dims, self.spec, self.std = dims, spec, std
        self.device, self.dtype = device, dtype
        self.generator = torch.Generator().manual_seed(spec.seed)
        with torch.device("meta"):
            self._layer_shapes = _shapes(InsertedLayer(dims, spec))
        self.channels = _cycle(spec.extra_hidden_size, dims.hidden_size)

    def _fill(self, name: str, shape: torch.Size) -> torch.Tensor:
        """`normal`/`zeros` init of one tensor: norms 1, biases 0, weights N(0, std) or 0."""
        if name.endswith("norm"):
            return torch.ones(shape, device=self.device, dtype=self.dtype)
        if self.spec.init == "zeros" or name.endswith("bias"):
            return torch.zeros(shape, device=self.device, dtype=self.dtype)
        sample = torch.randn(shape, generator=self.generator) * self.std
        return sample.to(device=self.device, dtype=self.dtype)

    def embed(self, base_embed: torch.Tensor) -> torch.Tensor:
        """The extra embedding table [V, dx] from the base's table [V, d]."""
        if self.spec.init == "copy":
            return base_embed[:, self.channels.to(base_embed.device)].to(self.device, self.dtype)
        return self._fill("embed.weight", torch.Size((self.dims.vocab_size, self.spec.extra_hidden_size)))

    def layer(self, index: int, base: Tensors) -> Tensors:
        """Layer `index`'s InsertedLayer tensors (`q.weight`, `input_norm`, ...) from that base layer's tensors.

        Layers must be asked for in order (the random draws follow the calls).
        """
        if self.spec.init != "copy":
            return {name: self._fill(name, shape) for name, shape in self._layer_shapes.items()}
        dims, spec, hd = self.dims, self.spec, self.dims.head_dim
        rows = {
            "q": _head_rows(spec.query_heads_for(dims), dims.num_heads, hd),
            "k": _head_rows(spec.extra_kv_heads, dims.num_kv_heads, hd),
            "v": _head_rows(spec.extra_kv_heads, dims.num_kv_heads, hd),
            "o": self.channels,
            "gate": _cycle(spec.extra_intermediate_size, dims.intermediate_size),
            "up": _cycle(spec.extra_intermediate_size, dims.intermediate_size),
            "down": self.channels,
        }
        out = {
            name: base[f"{source}.weight"][self.channels.to(self.device)] for name, source in NORMS.items()
        }
        for name, source in PROJECTIONS.items():
            out.update(self._copied(name, base, source, rows[name].to(self.device)))
        return {name: tensor.to(self.device, self.dtype) for name, tensor in out.items()}

    def _copied(self, name: str, base: Tensors, source: str, rows: torch.Tensor) -> Tensors:
        """[source[rows] | 0]: the copied rows read n_o exactly as the originals; the n_e block is 0."""
        weight = base[f"{source}.weight"]
        target = weight.new_zeros(self._layer_shapes[f"{name}.weight"])
        target[:, : weight.shape[1]] = weight[rows]
        out = {f"{name}.weight": target}
        if f"{name}.bias" in self._layer_shapes:
            bias = base.get(f"{source}.bias")
            out[f"{name}.bias"] = bias[rows] if bias is not None else weight.new_zeros(len(rows))
        return out

    def head(self, base_norm: torch.Tensor, base_lm_head: torch.Tensor) -> Tensors:
        """The final norm's extra weight `norm` [dx] and `signal_head.weight` [S, dx]."""
        size = self.spec.signal_size(self.dims)
        if self.spec.init != "copy":
            return {
                "norm": self._fill("norm", torch.Size((self.spec.extra_hidden_size,))),
                "signal_head.weight": self._fill(
                    "signal_head.weight", torch.Size((size, self.spec.extra_hidden_size))
                ),
            }
        channels = self.channels.to(base_norm.device)
        return {
            "norm": base_norm[channels].to(self.device, self.dtype),
            "signal_head.weight": base_lm_head[:size][:, channels].to(self.device, self.dtype),
        }


def layer_items(state: Tensors, prefix: str) -> Tensors:
    """The entries of `state` under `prefix`, keyed without it."""
    return {name[len(prefix) :]: tensor for name, tensor in state.items() if name.startswith(prefix)}


@torch.no_grad()
def initialise(inserted: InsertedParameters, base_lm: nn.Module, dims: BaseDims, spec: OtterSpec) -> None:
    """Fill the inserted tensors per `spec.init`; the base model is only read."""
    reference = inserted.norm
    std = getattr(base_lm.config, "initializer_range", 0.02)
    init = InsertedInit(dims, spec, std, reference.device, reference.dtype)
    base = base_lm.state_dict()
    inserted.embed.weight.copy_(init.embed(base["model.embed_tokens.weight"]))
    for index, layer in enumerate(inserted.layers):
        tensors = init.layer(index, layer_items(base, f"model.layers.{index}."))
        layer.load_state_dict(tensors, strict=True)
    head = init.head(base["model.norm.weight"], base_lm.lm_head.weight)
    inserted.norm.copy_(head["norm"])
    inserted.signal_head.weight.copy_(head["signal_head.weight"])
