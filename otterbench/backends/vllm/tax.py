"""The integration tax: the base model served with the norm path an Otter checkpoint forces on vLLM.

`RMSNorm(..., var_hidden_size=d)` (the one-line change) makes vLLM leave its fused norm kernels: their
`supports_args` refuse a variance-size override (vllm/kernels/vllm_c.py, aiter_ops.py), so vLLM dispatches
the PyTorch-native norm (`vllm/ir/ops/layernorm.py`, which slices `x[..., :d]`). That fallback, not the
inserted parameters, is the tax of serving Otter in an engine. vLLM drops an override equal to the width
(`RMSNorm.__init__`), so the base cannot show it as is: these classes keep the override at the full width,
which forces the same dispatch and computes the very same values (`x[..., :d]` is all of `x`). On CPU vLLM
has no fused norm kernel, so the tax measured there is the slice's alone; on CUDA it is the kernel fallback.

Select a class with `hf_overrides={"architectures": [NORM_TAX_ARCHITECTURES[family]]}` (otter/support.py) on a
base checkpoint (EngineOptions.architecture); registered by the plugin (plugin.py), as the fused ones are.
"""

from __future__ import annotations

from torch import nn
from vllm.model_executor.layers.layernorm import RMSNorm
from vllm.model_executor.models.llama import LlamaForCausalLM
from vllm.model_executor.models.mistral import MistralForCausalLM
from vllm.model_executor.models.qwen2 import Qwen2ForCausalLM

from otterbench.backends.vllm.models import NORMS


class WidthOverrideRMSNorm(RMSNorm):
    """vLLM's RMSNorm with a variance-size override equal to its width, kept (vLLM's own init drops it)."""

    def __init__(self, hidden_size: int, eps: float) -> None:
        super().__init__(hidden_size, eps=eps, var_hidden_size=hidden_size)
        # RMSNorm reads this attribute when it dispatches; None would select the fused kernels again
        self.variance_size_override = hidden_size


def override_norms(model: nn.Module) -> int:
    """Replace every decoder norm and the final norm of vLLM's inner `model` (before weights load)."""
    sites = [(model, "norm")] + [(layer, name) for layer in model.layers for name in NORMS]
    replaced = 0
    for parent, name in sites:
        norm = getattr(parent, name, None)
        if isinstance(norm, RMSNorm):  # a pipeline stage's missing layers are placeholders
            setattr(parent, name, WidthOverrideRMSNorm(norm.hidden_size, norm.variance_epsilon))
            replaced += 1
    return replaced


class NormOverrideCausalLM:
    """Mixin over a vLLM causal LM: its norms on the path an Otter checkpoint's norms take."""

    def __init__(self, *, vllm_config, prefix: str = "", **kwargs) -> None:
        super().__init__(vllm_config=vllm_config, prefix=prefix, **kwargs)
        override_norms(self.model)


class OtterNormsLlamaForCausalLM(NormOverrideCausalLM, LlamaForCausalLM):
    """vLLM's Llama with Otter's norm dispatch and no inserted parameters."""


class OtterNormsQwen2ForCausalLM(NormOverrideCausalLM, Qwen2ForCausalLM):
    """vLLM's Qwen2 with Otter's norm dispatch and no inserted parameters."""


class OtterNormsMistralForCausalLM(NormOverrideCausalLM, MistralForCausalLM):
    """vLLM's Mistral with Otter's norm dispatch and no inserted parameters."""


def served_norm_sizes(model: nn.Module) -> list[int | None]:
    """The variance size each RMSNorm of a served model computes over (None: its full width, the fused
    kernels' path); run inside vLLM's workers with `LLM.apply_model`."""
    return [norm.variance_size_override for norm in model.modules() if isinstance(norm, RMSNorm)]
