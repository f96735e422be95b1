"""Build small seeded models of the supported families from configs: no download, no files."""

from __future__ import annotations

from typing import Any, Literal

import torch
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForSequenceClassification,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

Family = Literal["llama", "qwen2", "mistral"]

_CONFIGS = {"llama": LlamaConfig, "qwen2": Qwen2Config, "mistral": MistralConfig}
_CAUSAL_LMS = {"llama": LlamaForCausalLM, "qwen2": Qwen2ForCausalLM, "mistral": MistralForCausalLM}


def make_config(
    family: Family = "llama",
    *,
    vocab_size: int = 256,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 128,
    tie_word_embeddings: bool = False,
    **extra: Any,
) -> Any:
    """A config of `family` with the given sizes (pad id 0, eager-free defaults)."""
    return _CONFIGS[family](
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        intermediate_size=intermediate_size,
        tie_word_embeddings=tie_word_embeddings,
        max_position_embeddings=2048,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        **extra,
    )


def _seeded(seed: int, build: Any, config: Any) -> Any:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build(config)
    return model.eval()


def make_causal_lm(family: Family = "llama", seed: int = 0, **sizes: Any) -> Any:
    """A randomly initialised causal LM of `family`, deterministic for a seed, in eval mode."""
    return _seeded(seed, _CAUSAL_LMS[family], make_config(family, **sizes))


def make_reward_model(seed: int = 0, **sizes: Any) -> LlamaForSequenceClassification:
    """A one-label Llama sequence classifier (the ARGS reward-model shape), deterministic for a seed."""
    return _seeded(seed, LlamaForSequenceClassification, make_config("llama", num_labels=1, **sizes))
