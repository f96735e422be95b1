"""The `base` arm: the LLM alone, greedy with its KV cache (the reference every extra cost is measured from).

And `base-plugin` (role "integration", `--engine vllm` only): the same base served through otterbench's vLLM
plugin on the norm path an Otter checkpoint forces (backends/vllm/tax.py), no inserted parameter; its extra
over `base` is the integration tax, the cost of the one-line change alone.
"""

from __future__ import annotations

from typing import Any

from otterbench.arms.spec import ArmSpec, CostModel, ModelsByRole
from otterbench.backends.spec import greedy_choice


def _build(models: ModelsByRole) -> Any:
    from otterbench.arms.greedy import BaseArm

    return BaseArm(models["base"])


def _cost(model: CostModel) -> Any:
    return model.cached("base")


def _engine_only(models: ModelsByRole) -> Any:
    raise ValueError("base-plugin has no step-level decoding: it runs under --engine vllm only")


def _norm_path_loop(options: Any, device: Any) -> Any:
    """The vllm backend's own engine, serving the base as its `OtterNorms<Family>ForCausalLM`."""
    from otterbench.backends.vllm.backend import VLLMBackend
    from otterbench.otter.support import NORM_TAX_ARCHITECTURES

    return VLLMBackend(options, device, architectures=NORM_TAX_ARCHITECTURES)


SPECS = (
    ArmSpec("base", "base", None, ("base",), _build, cost=_cost, choose=greedy_choice, origin=__name__),
    ArmSpec(
        "base-plugin",
        "integration",
        None,
        ("base",),
        _engine_only,
        choose=greedy_choice,
        decides_as="base",  # the same model, its norms on Otter's path (the integration tax)
        backends=("vllm",),
        engine_loop=_norm_path_loop,
        origin=__name__,
    ),
)
