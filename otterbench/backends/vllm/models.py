"""The fused Otter checkpoint as vLLM model classes: vLLM's own Llama/Qwen2/Mistral plus the one-line change.

Each class subclasses vLLM's causal LM of its family unchanged and then (1) rebuilds the decoder norms and
the final norm as `RMSNorm(d+dx, var_hidden_size=d)` — the variance over the first d channels, the paper's
one-line change (docs/otter.md) — reading d from the checkpoint's `otter_original_hidden_size`; (2) adds the
signal head (`signal_head.weight` in the checkpoint), a vocabulary-parallel head over the extra
channels, whose outputs `compute_logits` appends to the base logits when the engine asks for them
(layout.py). Registered only through the plugin (plugin.py), so vLLM's spawned workers see them.
"""

from __future__ import annotations

import torch
from torch import nn
from vllm.model_executor.layers.layernorm import RMSNorm
from vllm.model_executor.layers.logits_processor import LogitsProcessor
from vllm.model_executor.layers.vocab_parallel_embedding import ParallelLMHead
from vllm.model_executor.models.llama import LlamaForCausalLM
from vllm.model_executor.models.mistral import MistralForCausalLM
from vllm.model_executor.models.qwen2 import Qwen2ForCausalLM
from vllm.model_executor.models.utils import maybe_prefix

from otterbench.backends.vllm.layout import SIGNAL_SWITCH
from otterbench.otter.fused import CONFIG_FIELD
from otterbench.otter.layouts import SIGNAL

NORMS = ("input_layernorm", "post_attention_layernorm")


def prefix_norms(model: nn.Module, original_size: int) -> int:
    """Rebuild every decoder norm and the final norm of `model` (vLLM's inner model) with
    `var_hidden_size=original_size`; returns how many were rebuilt (weights load afterwards)."""
    sites = [(model, "norm")] + [(layer, name) for layer in model.layers for name in NORMS]
    rebuilt = 0
    for parent, name in sites:
        norm = getattr(parent, name, None)
        if isinstance(norm, RMSNorm):  # a pipeline stage's missing layers are placeholders
            wide = RMSNorm(norm.hidden_size, eps=norm.variance_epsilon, var_hidden_size=original_size)
            setattr(parent, name, wide)
            rebuilt += 1
    return rebuilt


class OtterCausalLM:
    """Mixin over a vLLM causal LM: prefix norms, the signal head, and the signal columns of the logits."""

    def __init__(self, *, vllm_config, prefix: str = "", **kwargs) -> None:
        super().__init__(vllm_config=vllm_config, prefix=prefix, **kwargs)
        config = vllm_config.model_config.hf_config
        self.otter_original_size = getattr(config, CONFIG_FIELD)
        prefix_norms(self.model, self.otter_original_size)
        self.otter_emits_signal = bool(getattr(config, SIGNAL_SWITCH, False))
        spec = getattr(config, "otter_spec", {}) or {}
        signal_size = config.vocab_size if spec.get("signal", "vocab") == "vocab" else 1
        extra = config.hidden_size - self.otter_original_size
        # named as the checkpoint stores it (SIGNAL), so vLLM's weight loader finds it by name
        self.signal_head = ParallelLMHead(
            signal_size, extra, prefix=maybe_prefix(prefix, SIGNAL.removesuffix(".weight"))
        )
        self.otter_signal_logits = LogitsProcessor(signal_size)

    def compute_logits(self, hidden_states: torch.Tensor) -> torch.Tensor | None:
        """[N, V] base logits; [N, V + S] with the signal columns appended when the engine's switch is on."""
        logits = super().compute_logits(hidden_states)
        if not self.otter_emits_signal or logits is None:
            return logits
        extra = hidden_states[..., self.otter_original_size :]
        signal = self.otter_signal_logits(self.signal_head, extra)
        return torch.cat([logits, signal.to(logits.dtype)], dim=-1)

    def compute_logits_local(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if self.otter_emits_signal:
            raise NotImplementedError("Otter's signal columns do not support batch-sharded sampling")
        return super().compute_logits_local(hidden_states)


class OtterLlamaForCausalLM(OtterCausalLM, LlamaForCausalLM):
    """vLLM's Llama with Otter's prefix norms and signal head."""


class OtterQwen2ForCausalLM(OtterCausalLM, Qwen2ForCausalLM):
    """vLLM's Qwen2 with Otter's prefix norms and signal head."""


class OtterMistralForCausalLM(OtterCausalLM, MistralForCausalLM):
    """vLLM's Mistral with Otter's prefix norms and signal head."""
