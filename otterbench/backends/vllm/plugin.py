"""The `vllm.general_plugins` entry point: vLLM calls `register` in every process it starts (the engine core
and each worker), which is the only way a spawned worker learns a model class (pyproject's entry point)."""

from __future__ import annotations

from otterbench.otter.support import FUSED_ARCHITECTURES

MODELS_MODULE = "otterbench.backends.vllm.models"


def register() -> None:
    """Register each family's fused Otter architecture, imported lazily (no torch or CUDA at plugin load)."""
    from vllm import ModelRegistry

    for architecture in FUSED_ARCHITECTURES.values():
        if architecture not in ModelRegistry.get_supported_archs():
            ModelRegistry.register_model(architecture, f"{MODELS_MODULE}:{architecture}")
