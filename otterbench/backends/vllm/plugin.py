"""The `vllm.general_plugins` entry point: vLLM calls `register` in every process it starts (the engine core
and each worker), which is the only way a spawned worker learns a model class (pyproject's entry point)."""

from __future__ import annotations

from otterbench.otter.support import FUSED_ARCHITECTURES, NORM_TAX_ARCHITECTURES

MODELS_MODULE = "otterbench.backends.vllm.models"
TAX_MODULE = "otterbench.backends.vllm.tax"  # the base on Otter's norm path (the integration tax)


def register() -> None:
    """Register each family's fused Otter architecture and its norm-path base, imported lazily (no torch or
    CUDA at plugin load)."""
    from vllm import ModelRegistry

    modules = [(FUSED_ARCHITECTURES, MODELS_MODULE), (NORM_TAX_ARCHITECTURES, TAX_MODULE)]
    for architectures, module in modules:
        for architecture in architectures.values():
            if architecture not in ModelRegistry.get_supported_archs():
                ModelRegistry.register_model(architecture, f"{module}:{architecture}")
