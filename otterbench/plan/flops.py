"""Decode FLOPs and bytes per step: the one home of the formulas the planner, `run` and bench-insert share.

Per model (notation of plan/costs.py): P_lin the parameters of its Linear layers, P_head those of its
output heads (vocabulary, signal or score; part of P_lin), L layers, h query heads, hd head dim, T the context.
Decode FLOPs per generated token `2*P_lin + 4*L*h*hd*T` (QK^T and AV each `2*h*hd*T` per layer); a forward
over q rows whose output is read at one of them (a cached prefill, `logits_to_keep=1`; a vLLM request) runs
the heads once: `q*(2*(P_lin - P_head) + ...) + 2*P_head`. Prefill FLOPs per prompt token
`2*(P_lin - P_head) + 2*P_head/T + 2*L*h*hd*T` (causal: T/2 keys on average), or `2*P_lin + 2*L*h*hd*T`
where every position's output is computed (an uncached forward, as the DExperts reference runs).
Otter's two layouts as model shapes: the split layout's inserted parameters alone (`inserted_shape`, run
beside the base), and the fused layout's whole widened checkpoint (`fused_shape`, run instead of the base:
its zero blocks are stored, read and multiplied).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from otterbench.otter.spec import BaseDims, OtterSpec, count_inserted_parameters
from otterbench.plan.shapes import ModelShape, PlanError, shape_of_config
from otterbench.plan.shapes import kv_bytes_per_token as kv_bytes_for


def decode_flops(shape: ModelShape, context: int, rows: float = 1, head_rows: float | None = None) -> float:
    """FLOPs of `rows` new positions of one sequence at context `context` (one generated token by default),
    the output heads run at `head_rows` of them (all by default)."""
    heads = rows if head_rows is None else head_rows
    attention = 4 * shape.num_layers * shape.num_heads * shape.head_dim * context
    body = 2 * (shape.linear_parameters - shape.head_parameters) + attention
    return rows * body + heads * 2 * shape.head_parameters


def prefill_flops(shape: ModelShape, context: int, all_positions: bool = False) -> float:
    """FLOPs per prompt token of a `context`-token prefill: its output heads at the last position, or at
    every position with `all_positions`."""
    body = 2 * (shape.linear_parameters - shape.head_parameters)
    heads = 2 * shape.head_parameters * (1 if all_positions else 1 / context)
    return body + heads + 2 * shape.num_layers * shape.num_heads * shape.head_dim * context


def kv_bytes_per_token(shape: ModelShape, bytes_per_element: int) -> int:
    """KV cache bytes one context token holds for one sequence: `2*L*g*hd*b`."""
    return kv_bytes_for(shape.num_layers, shape.num_kv_heads, shape.head_dim, bytes_per_element)


def decode_bytes_per_step(
    weights_bytes: int, batch: int, context: int, kv_moved_per_token: int, kv_transient: int = 0
) -> int:
    """Bytes one decode step moves: every weight read once, the KV cache read at batch x context, transients."""
    return weights_bytes + batch * context * kv_moved_per_token + batch * kv_transient


def inserted_shape(dims: BaseDims, spec: OtterSpec) -> ModelShape:
    """The split layout's inserted parameters as a model run beside the base."""
    dx, parameters = spec.extra_hidden_size, count_inserted_parameters(dims, spec)
    return ModelShape(
        source="otter-inserted",
        head="split",
        parameters=parameters,
        # the extra embedding table (V*dx) and the norms ((2L+1)*dx) are lookups and scalings, not matmuls
        linear_parameters=parameters - dims.vocab_size * dx - (2 * dims.num_layers + 1) * dx,
        head_parameters=dx * spec.signal_size(dims),  # the signal head, beside the base's vocabulary head
        num_layers=dims.num_layers,
        num_heads=spec.query_heads_for(dims),
        num_kv_heads=spec.extra_kv_heads,
        head_dim=dims.head_dim,
        vocab_size=dims.vocab_size,
    )


def require_checkpoint_width(dims: BaseDims, spec: OtterSpec, layout: str) -> None:
    """Refuse an insertion whose widened width d+dx the h+hx heads do not divide: transformers refuses such a
    config, so no checkpoint of `layout` (fused, packed) exists for it."""
    hidden, heads = dims.hidden_size + spec.extra_hidden_size, dims.num_heads + spec.query_heads_for(dims)
    if hidden % heads:
        raise PlanError(
            f"the {layout} layout cannot hold this insertion: hidden {hidden} is not a multiple of {heads} "
            "heads; choose extra_hidden_size = extra query heads x head_dim, or --layout split"
        )


def fused_shape(base_config: Any, spec: OtterSpec) -> ModelShape:
    """The fused layout's widened checkpoint plus its signal head (built on meta: no weights)."""
    from otterbench.otter.fused import widened_config

    dims = BaseDims.from_config(base_config)
    require_checkpoint_width(dims, spec, "fused")
    widened = widened_config(base_config, dims, spec)
    shape = shape_of_config(json.loads(widened.to_json_string(use_diff=False)), "otter-fused", "causal-lm")
    signal = spec.extra_hidden_size * spec.signal_size(dims)  # the head reading the dx extra channels
    return dataclasses.replace(
        shape,
        head="fused",
        parameters=shape.parameters + signal,
        linear_parameters=shape.linear_parameters + signal,
        head_parameters=shape.head_parameters + signal,
    )
