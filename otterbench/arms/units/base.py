"""The `base` arm: the LLM alone, greedy with its KV cache (the reference every extra cost is measured from)."""

from __future__ import annotations

from typing import Any

from otterbench.arms.spec import ArmSpec, CostModel, ModelsByRole


def _build(models: ModelsByRole) -> Any:
    from otterbench.arms.greedy import BaseArm

    return BaseArm(models["base"])


def _cost(model: CostModel) -> Any:
    return model.cached("base")


def _greedy(logits: Any, signal: Any, workload: Any) -> Any:
    return logits.argmax(dim=-1, keepdim=True)


SPECS = (ArmSpec("base", "base", None, ("base",), _build, cost=_cost, choose=_greedy, origin=__name__),)
