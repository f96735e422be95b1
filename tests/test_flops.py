"""One decode-FLOPs/bytes home: the planner and bench-insert give the same figures for the same model."""

from __future__ import annotations

import pytest

from otterbench.bench.insert import decode_flops_by_layout
from otterbench.otter.spec import BaseDims, OtterSpec, count_fused_extra_parameters
from otterbench.plan.costs import plan_costs
from otterbench.plan.inputs import PlanInputs
from otterbench.plan.shapes import config_from_dict, model_shape, read_config


@pytest.mark.parametrize("source", ["llama-2-7b", "llama-3-8b"])
def test_bench_insert_and_planner_share_decode_flops(source: str) -> None:
    context, batch = 300, 1
    config = config_from_dict(read_config(source))
    split = plan_costs(PlanInputs(base=source, context=context, batch_size=batch))
    fused = plan_costs(PlanInputs(base=source, context=context, batch_size=batch, layout="fused"))
    bench = decode_flops_by_layout(config, split.spec, context, batch)
    assert bench["base"] == split.arm("base").flops_per_token == fused.arm("base").flops_per_token
    assert bench["split"] == split.arm("otter-args").flops_per_token
    assert bench["fused"] == fused.arm("otter-args").flops_per_token


def test_fused_plan_stores_exactly_the_fused_checkpoint() -> None:
    fused = plan_costs(PlanInputs(base="llama-3-8b", layout="fused"))
    config = config_from_dict(read_config("llama-3-8b"))
    dims = BaseDims.from_config(config)
    extra = count_fused_extra_parameters(
        dims, OtterSpec.from_dict(fused.spec.to_dict()), tied_embeddings=False
    )
    assert fused.arm("otter-args").parameters == model_shape("llama-3-8b", "causal-lm").parameters + extra
