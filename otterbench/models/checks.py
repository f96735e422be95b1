"""What the parent can tell about a run's models without their weights: config, family, head and vocabulary.

Configs come from config.json (local folder or cached hub id) or, for the tiny profile, from
`otterbench.models.tiny.tiny_config`; nothing here builds a model.
"""

from __future__ import annotations

from typing import Any

from otterbench.models.roles import model_role, role_flag
from otterbench.models.sources import TINY, load_config
from otterbench.models.tiny import tiny_config
from otterbench.otter.support import SUPPORTED_MODEL_TYPES


def model_config(source: str, role: str) -> Any:
    """The config of the model `role` loads from `source`; a missing model raises ModelUnavailableError."""
    return tiny_config(role) if source == TINY else load_config(source, role)


def causal_lm_class(config: Any) -> str:
    """The class name AutoModelForCausalLM builds for `config` (what an Otter folder's fingerprint records)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(getattr(config, "model_type", None), "unknown")


def reward_head_problem(source: str, config: Any) -> str | None:
    """Why `config` cannot be ARGS's reward model (a one-label sequence classifier), or None."""
    architectures = list(getattr(config, "architectures", None) or [])
    if architectures and not any(name.endswith("ForSequenceClassification") for name in architectures):
        return (
            f"reward_model {source!r} is a {architectures[0]} (config.json architectures), not a reward "
            "model: ARGS needs a one-label sequence classifier; pass another --reward-model"
        )
    if config.num_labels != 1:
        return (
            f"reward_model {source!r} has num_labels {config.num_labels}: ARGS needs a one-label reward "
            "model (a scalar score per sequence); pass a different --reward-model"
        )
    return None


def _head_problem(role: str, source: str, config: Any) -> str | None:
    if model_role(role).head == "reward":
        return reward_head_problem(source, config)
    architectures = list(getattr(config, "architectures", None) or [])
    if any(name.endswith("ForSequenceClassification") for name in architectures):
        return (
            f"{role} {source!r} is a {architectures[0]}, not a causal LM: pass a causal LM with "
            f"{role_flag(role)}"
        )
    return None


def config_problems(role: str, source: str, config: Any, base_vocab: int | None) -> list[str]:
    """Family, head and vocabulary problems of one role's config (`base_vocab`: the LLM's vocab size)."""
    problems = []
    model_type = getattr(config, "model_type", None)
    # otterbench's own code walks these (Otter inserts into the base; the ARGS scorers reuse the reward
    # model's decoder): they must be one of the supported families
    if model_role(role).walked and model_type not in SUPPORTED_MODEL_TYPES:
        problems.append(
            f"{role} {source!r} is a {model_type!r} model, which otterbench does not support: pass "
            f"{role_flag(role)} a model of the {', '.join(SUPPORTED_MODEL_TYPES)} families"
        )
    head = _head_problem(role, source, config)
    if head:
        problems.append(head)
    vocab = getattr(config, "vocab_size", None)
    if role != "base" and base_vocab is not None and vocab != base_vocab:
        task = model_role(role).task_noun
        problems.append(
            f"{task} needs the {role.replace('_', ' ')} to share the LLM's token ids: {role} {source!r} has "
            f"vocab {vocab}, the base has {base_vocab}; pass {role_flag(role)} a model with the base's tokenizer"
        )
    return problems
