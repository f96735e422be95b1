"""insert_otter and OtterModel: the split layout (wrappers around untouched original modules).

The base model object is never modified: the wrappers live in a shallow clone of its module tree that shares
every parameter and buffer (see `wrappers.shallow_clone`), so `otter.base_model(x)` still runs the original.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import DynamicCache

from otterbench.compat import cache_kwargs, drop_last_tokens, new_static_cache
from otterbench.otter.output import OtterOutput
from otterbench.otter.params import InsertedParameters, initialise
from otterbench.otter.spec import BaseDims, OtterSpec
from otterbench.otter.support import check_supported
from otterbench.otter.wrappers import (
    OtterAttention,
    OtterEmbedding,
    OtterMLP,
    OtterRMSNorm,
    RuntimeState,
    shallow_clone,
)


def new_dynamic_cache(config: Any) -> DynamicCache:
    """A DynamicCache laid out for `config` (sliding layers included) on any supported release."""
    try:
        return DynamicCache(config=config)
    except TypeError:  # releases whose DynamicCache takes no config
        return DynamicCache()


class OtterCache:
    """The base model's own KV cache beside the inserted heads' cache; pass it back on the next call.

    Dynamic by default; static (`max_cache_len` slots per sequence, for the compiled engine) when given.
    """

    def __init__(self, config: Any, max_cache_len: int | None = None) -> None:
        if max_cache_len is None:
            self.base, self.extra = new_dynamic_cache(config), new_dynamic_cache(config)
        else:  # static layers size themselves at their first update, so the extra heads' count fits too
            self.base, self.extra = (
                new_static_cache(config, max_cache_len),
                new_static_cache(config, max_cache_len),
            )

    def reset(self) -> None:
        """Empty both caches in place (static caches keep their tensors)."""
        self.base.reset()
        self.extra.reset()

    def get_seq_length(self) -> int:
        return self.base.get_seq_length()

    def drop_last_tokens(self, count: int) -> None:
        """Remove the newest `count` positions from both caches."""
        drop_last_tokens(self.base, count)
        drop_last_tokens(self.extra, count)


def _build_runtime(
    base_lm: nn.Module, inserted: InsertedParameters, d: int, state: RuntimeState
) -> nn.Module:
    """A clone of base_lm.model whose embedding, norms, attention and MLP are Otter wrappers."""
    inner = base_lm.model
    runtime = shallow_clone(inner)
    runtime.embed_tokens = OtterEmbedding(inner.embed_tokens, inserted.embed)
    runtime.norm = OtterRMSNorm(inner.norm, inserted.norm, d)
    layers = shallow_clone(inner.layers)
    for index, (layer, extra) in enumerate(zip(inner.layers, inserted.layers)):
        clone = shallow_clone(layer)
        clone.input_layernorm = OtterRMSNorm(layer.input_layernorm, extra.input_norm, d)
        clone.post_attention_layernorm = OtterRMSNorm(layer.post_attention_layernorm, extra.post_norm, d)
        clone.self_attn = OtterAttention(layer.self_attn, extra, d, state)
        clone.mlp = OtterMLP(layer.mlp, extra, d)
        layers[index] = clone
    runtime.layers = layers
    return runtime


class OtterModel(nn.Module):
    """A frozen base causal LM plus inserted parameters predicting `signal` alongside its logits."""

    def __init__(self, base_model: nn.Module, spec: OtterSpec) -> None:
        super().__init__()
        check_supported(base_model)
        self.dims = BaseDims.from_config(base_model.config)
        spec.validate_for(self.dims)
        self.spec = spec
        self.base_model = base_model
        base_model.requires_grad_(False)
        reference = base_model.model.embed_tokens.weight
        self.inserted = InsertedParameters(self.dims, spec).to(device=reference.device, dtype=reference.dtype)
        initialise(self.inserted, base_model, self.dims, spec)
        self._state = RuntimeState()
        # not registered as a child: it shares the base's tensors and would list them twice
        object.__setattr__(
            self, "_runtime", _build_runtime(base_model, self.inserted, self.dims.hidden_size, self._state)
        )
        self.train(base_model.training)

    @property
    def config(self) -> Any:
        return self.base_model.config

    def train(self, mode: bool = True) -> OtterModel:
        super().train(mode)
        self._runtime.train(mode)
        return self

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        past_key_values: OtterCache | None = None,
        use_cache: bool = False,
        position_ids: torch.Tensor | None = None,
        logits_to_keep: int = 0,
    ) -> OtterOutput:
        """One pass: the base model's logits, the inserted signal and (with use_cache) the updated cache;
        with `logits_to_keep` > 0 both heads read the last that many positions only."""
        if use_cache and past_key_values is None:
            past_key_values = OtterCache(self.config)
        self._state.extra_cache = past_key_values.extra if past_key_values is not None else None
        try:
            out = self._runtime(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                use_cache=use_cache,
                **cache_kwargs(past_key_values.base if past_key_values is not None else None),
            )
        finally:
            self._state.extra_cache = None
        hidden = out.last_hidden_state  # [B, T, d+dx], already normed
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        d = self.dims.hidden_size
        logits = self.base_model.lm_head(hidden[..., :d].contiguous())
        signal = self.inserted.signal_head(hidden[..., d:])
        return OtterOutput(
            logits=logits, signal=signal, past_key_values=past_key_values if use_cache else None
        )

    def num_inserted_parameters(self) -> int:
        """How many parameters the insertion added (the split layout stores no zero blocks)."""
        return sum(p.numel() for p in self.inserted.parameters())

    def inserted_state_dict(self) -> dict[str, torch.Tensor]:
        """Only the inserted tensors, keyed by their names under `inserted`."""
        return dict(self.inserted.state_dict())

    def to_fused(self) -> nn.Module:
        """The fused layout: a standard widened checkpoint plus the variance-over-d norm change."""
        from otterbench.otter.fused import fuse

        return fuse(self)

    def to_packed(self) -> nn.Module:
        """The packed layout: engine-ready like fused, storing only the inserted parameters."""
        from otterbench.otter.packed import pack

        return pack(self)


def insert_otter(model: nn.Module, spec: OtterSpec) -> OtterModel:
    """Insert Otter's parameters beside a Llama/Qwen2/Mistral causal LM (the model itself stays untouched)."""
    return OtterModel(model, spec)
