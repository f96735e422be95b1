"""The embedded "tiny" profile: small seeded Llama models that share the shipped tokenizer.

Random weights: text is not meaningful; they exist to measure cost and check that arms agree.
Built offline from configs (no download, no files), each role from its own fixed seed, so two builds with
the same seed are parameter-for-parameter equal.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch
from transformers import LlamaForCausalLM, LlamaForSequenceClassification

from otterbench.models.build import make_causal_lm, make_config, make_reward_model
from otterbench.models.roles import model_role

# Llama family, vocab = the shipped tokenizer's 4096 tokens. Sized so that the safety suite (32 prompts x 16
# new tokens, the ARGS arms with k=10 reward-model rows per step) runs on 2 CPU cores in seconds; measured
# figures are in docs/tiny-profile.md. GQA (4 query heads over 2 kv heads) as in current Llama releases.
TINY_SIZES: dict[str, int] = {
    "vocab_size": 4096,
    "hidden_size": 128,
    "num_layers": 4,
    "num_heads": 4,
    "num_kv_heads": 2,
    "intermediate_size": 384,
}
# the speculative-decoding draft model: same tokenizer, half the layers and half the width, so a draft
# forward costs well under a base forward (as a 68M draft does beside a 7B Llama)
TINY_DRAFT_SIZES: dict[str, int] = {
    **TINY_SIZES,
    "hidden_size": 64,
    "num_layers": 2,
    "num_heads": 2,
    "num_kv_heads": 1,
    "intermediate_size": 192,
}


_SIZES = {"base": TINY_SIZES, "draft": TINY_DRAFT_SIZES}  # a role's `tiny_sizes` -> its shape
SEED_STRIDE = 16  # room for new roles: adding one never changes an existing role's seed


def tiny_seed(role: str, seed: int = 0) -> int:
    """The torch seed of `role`'s weights for profile seed `seed`: distinct for every (role, seed) pair."""
    return seed * SEED_STRIDE + model_role(role).tiny_seed_index


def tiny_config(role: str) -> Any:
    """The config `build_tiny_model(role)` builds from, with its class in `architectures` (no weights made)."""
    spec = model_role(role)  # unknown roles raise here, listing the known ones
    if spec.head == "reward":
        config = make_config("llama", num_labels=1, **_SIZES[spec.tiny_sizes])
        config.architectures = [LlamaForSequenceClassification.__name__]
    else:
        config = make_config("llama", **_SIZES[spec.tiny_sizes])
        config.architectures = [LlamaForCausalLM.__name__]
    return config


def build_tiny_model(role: str, seed: int = 0) -> Any:
    """One tiny model (random weights): a one-label reward model for a reward head, else a causal LM.

    `token_reward_model` (the args-token arm's GenARM-style scorer) is a causal LM of the reward model's
    backbone size whose next-token logits are read as a reward for every vocabulary entry. The reward model
    is the base's size: the ARGS paper pairs a 7B LLM with a 7B reward model.
    """
    spec = model_role(role)
    sizes = _SIZES[spec.tiny_sizes]
    if spec.head == "reward":
        return make_reward_model(seed=tiny_seed(role, seed), **sizes)
    return make_causal_lm("llama", seed=tiny_seed(role, seed), **sizes)


@dataclass
class TinyModels:
    """The tiny models, one per role (random weights: text is not meaningful; they measure cost and agreement)."""

    base: LlamaForCausalLM
    reward_model: LlamaForSequenceClassification
    expert: LlamaForCausalLM
    anti_expert: LlamaForCausalLM
    draft: LlamaForCausalLM
    token_reward_model: LlamaForCausalLM


def _held() -> list[str]:
    return [f.name for f in fields(TinyModels)]


def build_tiny_models(seed: int = 0) -> TinyModels:
    """Every tiny model for profile seed `seed`, in eval mode on the CPU in float32."""
    with torch.no_grad():
        return TinyModels(**{role: build_tiny_model(role, seed) for role in _held()})
