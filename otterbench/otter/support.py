"""The base architectures Otter knows how to insert into: one list, checked on a config or on a model."""

from __future__ import annotations

from typing import Any

SUPPORTED_CLASSES = ("LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM")
SUPPORTED_MODEL_TYPES = ("llama", "qwen2", "mistral")
# the architecture a fused checkpoint of each family declares: unknown to an engine without otterbench's plugin,
# which then refuses it instead of computing the norms over d+dx channels (wrong tokens, silently)
FUSED_ARCHITECTURES = {name: f"Otter{name}" for name in SUPPORTED_CLASSES}
# the architecture that serves a *base* checkpoint on the norm path a fused one forces on an engine, with no
# inserted parameter (the integration tax; otterbench/backends/vllm/tax.py)
NORM_TAX_ARCHITECTURES = {name: f"OtterNorms{name}" for name in SUPPORTED_CLASSES}


def unsupported_reason(model_type: str | None, class_names: tuple[str, ...] = ()) -> str | None:
    """Why a base of this model_type/class cannot take Otter; None when it can."""
    if model_type in SUPPORTED_MODEL_TYPES or any(name in SUPPORTED_CLASSES for name in class_names):
        return None
    return (
        f"Otter does not support model_type={model_type!r}; supported: {', '.join(SUPPORTED_MODEL_TYPES)} "
        f"({', '.join(SUPPORTED_CLASSES)}) and models sharing their module structure"
    )


def check_supported(model: Any) -> None:
    """Refuse models whose module structure Otter does not know (ValueError, one line)."""
    name = type(model).__name__
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    reason = unsupported_reason(model_type, tuple(cls.__name__ for cls in type(model).__mro__))
    if reason:
        raise ValueError(f"insert_otter does not support {name}: {reason}")
    if not hasattr(model, "model") or not hasattr(model, "lm_head"):
        raise ValueError(f"{name} lacks the .model/.lm_head structure of {', '.join(SUPPORTED_CLASSES)}")
