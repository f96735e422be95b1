"""Wrappers that carry the widened residual stream `[x_o ; x_e]` through transformers' own decoder layers.

Each wrapper hands its original module a contiguous `x_o` (a strided view can change kernels and rounding),
calls it unchanged, then adds the extra path and concatenates. Information flows original -> extra only, so
the first d channels are bit-for-bit the base model's.
"""

from __future__ import annotations

import copy
import sys
from typing import Any

import torch
from torch import nn
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from otterbench.compat import cache_from_kwargs
from otterbench.otter.params import InsertedLayer

_CACHE_NAMES = ("cache", "past_key_values")


def shallow_clone(module: nn.Module) -> nn.Module:
    """A new module object sharing every parameter and buffer of `module`, with its own child table.

    Children can then be swapped on the clone without touching the original module tree.
    """
    clone = copy.copy(module)
    clone._modules = dict(module._modules)
    return clone


class CapturingLinear(nn.Module):
    """Calls an original projection unchanged and keeps its input (attn_o or a_o) for the extra path."""

    def __init__(self, linear: nn.Module) -> None:
        super().__init__()
        self.linear = linear
        self.captured: torch.Tensor | None = None

    @property
    def weight(self) -> torch.Tensor:
        return self.linear.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.captured = x
        return self.linear(x)

    def take(self) -> torch.Tensor:
        captured, self.captured = self.captured, None
        return captured


class RuntimeState:
    """Per-call state the OtterModel hands its attention wrappers: the inserted heads' own KV cache."""

    def __init__(self) -> None:
        self.extra_cache: Any = None


class OtterEmbedding(nn.Module):
    """ids -> [E(ids) ; E_e(ids)]: the original table, unchanged, beside the extra one."""

    def __init__(self, embed: nn.Module, extra_embed: nn.Embedding) -> None:
        super().__init__()
        self.base_embed = embed
        self.extra_embed = extra_embed

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.base_embed(input_ids), self.extra_embed(input_ids)], dim=-1)


class OtterRMSNorm(nn.Module):
    """RMSNorm whose variance comes from the original channels only: n_o is the base norm's own output."""

    def __init__(self, norm: nn.Module, extra_weight: nn.Parameter, hidden_size: int) -> None:
        super().__init__()
        self.base_norm = norm
        self.extra_weight = extra_weight
        self.d = hidden_size
        self.eps = getattr(norm, "variance_epsilon", getattr(norm, "eps", 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_o = x[..., : self.d].contiguous()
        n_o = self.base_norm(x_o)
        # r = rsqrt(mean(x_o^2) + eps), computed in float32 as the base norm does
        r = torch.rsqrt(x_o.float().pow(2).mean(-1, keepdim=True) + self.eps)
        n_e = self.extra_weight * (x[..., self.d :].float() * r).to(x.dtype)
        return torch.cat([n_o, n_e.to(n_o.dtype)], dim=-1)


def _family_function(module: nn.Module, name: str) -> Any:
    """A helper from the module's own modeling file (same RoPE, same eager attention as the base)."""
    return getattr(sys.modules[type(module).__module__], name)


class OtterAttention(nn.Module):
    """Original heads untouched; hx extra query heads over gx extra kv heads with their own KV cache.

    q_e, k_e, v_e = [A|B] [n_o ; n_e]  (same RoPE);  x_e += [C_o|C_e] [attn_o ; attn_e].
    """

    def __init__(self, attn: nn.Module, extra: InsertedLayer, hidden_size: int, state: RuntimeState) -> None:
        super().__init__()
        self.base_attn = shallow_clone(attn)
        self.base_attn.o_proj = CapturingLinear(attn.o_proj)
        self.extra = extra
        self.state = state
        self.d = hidden_size
        # attributes transformers' attention functions read from the module they are given
        self.config = attn.config
        self.layer_idx = attn.layer_idx
        self.head_dim = attn.head_dim
        self.num_key_value_groups = attn.num_key_value_groups
        self.scaling = attn.scaling
        self.is_causal = True
        self.sliding_window = getattr(attn, "sliding_window", None) or getattr(
            attn.config, "sliding_window", None
        )
        self._rope = _family_function(attn, "apply_rotary_pos_emb")
        self._eager = _family_function(attn, "eager_attention_forward")

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, Any]:
        n_o = hidden_states[..., : self.d].contiguous()
        out_o, weights = self.base_attn(
            n_o, position_embeddings=position_embeddings, attention_mask=attention_mask, **kwargs
        )
        attn_o = self.base_attn.o_proj.take()  # [B, T, h*hd]
        attn_e = self._extra_heads(hidden_states, position_embeddings, attention_mask, kwargs)
        delta_e = self.extra.o(torch.cat([attn_o, attn_e], dim=-1))  # [B, T, dx]
        return torch.cat([out_o, delta_e], dim=-1), weights

    def _extra_heads(
        self,
        hidden: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        attention_mask: torch.Tensor | None,
        kwargs: dict[str, Any],
    ) -> torch.Tensor:
        batch, length, _ = hidden.shape
        shape = (batch, length, -1, self.head_dim)
        q = self.extra.q(hidden).view(shape).transpose(1, 2)  # [B, hx, T, hd]
        k = self.extra.k(hidden).view(shape).transpose(1, 2)  # [B, gx, T, hd]
        v = self.extra.v(hidden).view(shape).transpose(1, 2)
        cos, sin = position_embeddings
        q, k = self._rope(q, k, cos, sin)
        if self.state.extra_cache is not None and cache_from_kwargs(kwargs) is not None:
            k, v = self.state.extra_cache.update(k, v, self.layer_idx)
        implementation = self.config._attn_implementation
        attend = self._eager if implementation == "eager" else ALL_ATTENTION_FUNCTIONS[implementation]
        rest = {key: value for key, value in kwargs.items() if key not in _CACHE_NAMES}
        if self.sliding_window is not None:
            rest.setdefault("sliding_window", self.sliding_window)
        out, _ = attend(self, q, k, v, attention_mask, dropout=0.0, scaling=self.scaling, **rest)
        return out.reshape(batch, length, -1)  # [B, T, hx*hd]


class OtterMLP(nn.Module):
    """SwiGLU with mx extra neurons: a_e = silu(g_e) * u_e;  x_e += [D_o|D_e] [a_o ; a_e]."""

    def __init__(self, mlp: nn.Module, extra: InsertedLayer, hidden_size: int) -> None:
        super().__init__()
        self.base_mlp = shallow_clone(mlp)
        self.base_mlp.down_proj = CapturingLinear(mlp.down_proj)
        self.act = mlp.act_fn
        self.extra = extra
        self.d = hidden_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y_o = self.base_mlp(x[..., : self.d].contiguous())
        a_o = self.base_mlp.down_proj.take()  # [B, T, m]
        a_e = self.act(self.extra.gate(x)) * self.extra.up(x)  # [B, T, mx]
        return torch.cat([y_o, self.extra.down(torch.cat([a_o, a_e], dim=-1))], dim=-1)
