"""The `base` arm: the LLM alone, greedy with its KV cache (the reference every extra cost is measured from)."""

from __future__ import annotations

from typing import Any

from otterbench.arms.spec import ArmSpec, CostModel, ModelsByRole
from otterbench.backends.spec import greedy_choice


def _build(models: ModelsByRole) -> Any:
    from otterbench.arms.greedy import BaseArm

    return BaseArm(models["base"])


def _cost(model: CostModel) -> Any:
    return model.cached("base")


SPECS = (ArmSpec("base", "base", None, ("base",), _build, cost=_cost, choose=greedy_choice, origin=__name__),)
