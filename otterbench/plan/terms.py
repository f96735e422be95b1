"""One model's share of an arm's predicted cost (`Term`), and the `CostModel` an arm's cost term is handed
(`Shapes`: each model role's shape, cached and uncached shares). Formulas: plan/costs.py's docstring.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from otterbench.dtypes import DTYPE_BYTES
from otterbench.models.roles import BASE_ROLE, model_role
from otterbench.plan.flops import decode_flops, kv_bytes_per_token, prefill_flops
from otterbench.plan.inputs import PlanInputs
from otterbench.plan.layouts import PLANNED_LAYOUTS
from otterbench.plan.shapes import ModelShape, PlanError, model_shape


@dataclass(frozen=True)
class Term:
    """One model's share of an arm; fields add up across the models an arm runs."""

    parameters: int
    decode_flops: float  # per generated token
    prefill_flops: float  # per prompt token, all the rows it is prefilled in
    kv_bytes_per_token: int  # held, per sequence and context token
    kv_moved_bytes_per_token: int  # read or copied each decode step, per sequence and context token
    kv_transient_bytes: int  # written each step, per sequence, independent of context
    prefill_kv_bytes_per_token: int  # written by the prefill, per sequence and prompt token

    def __add__(self, other: Term) -> Term:
        return Term(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


def cached_term(
    shape: ModelShape,
    b: int,
    context: int,
    prompt: int,
    rows: float = 1,
    cache_rows: int = 1,
    moved_rows: int = 1,
    prefills: int = 1,
    transient_rows: float = 0,
    head_rows: float | None = None,
) -> Term:
    # rows may be a mean (args-vllm: the tokens a prefix cache of whole blocks leaves to recompute, the output
    # heads run at head_rows of them: one per request); the prefill reads the last position's output only
    kv = kv_bytes_per_token(shape, b)
    return Term(
        parameters=shape.parameters,
        decode_flops=decode_flops(shape, context, rows, head_rows),
        prefill_flops=prefills * prefill_flops(shape, prompt),
        kv_bytes_per_token=cache_rows * kv,
        kv_moved_bytes_per_token=moved_rows * kv,
        kv_transient_bytes=round(transient_rows * kv),
        prefill_kv_bytes_per_token=prefills * kv,
    )


def uncached_term(shape: ModelShape, context: int, prompt: int) -> Term:
    # no cache: every new token re-runs the whole T-token sequence, its heads at every position (as the
    # DExperts reference's forwards do); the prefill is one such forward, nothing kept
    every = prefill_flops(shape, context, all_positions=True)
    return Term(
        shape.parameters, context * every, prefill_flops(shape, prompt, all_positions=True), 0, 0, 0, 0
    )


class Shapes:
    """The CostModel an arm's cost term is handed (otterbench/arms/spec.py): its models' shares by role."""

    def __init__(self, inputs: PlanInputs, base: ModelShape, otter: ModelShape) -> None:
        self.inputs, self.base, self.otter_shape = inputs, base, otter
        self.k, self.b, self.t, self.p = inputs.k, DTYPE_BYTES[inputs.dtype], inputs.context, inputs.prompt
        self.vllm_block_size = inputs.vllm_block_size
        self.shapes = {BASE_ROLE: base}  # role -> shape, each read once

    def shape(self, role: str, same_vocab: bool = False) -> ModelShape:
        """A role's shape: its source when given, else the base's shape (as a model of the role's head)."""
        if role not in self.shapes:
            kind = "reward" if model_role(role).head == "reward" else "causal-lm"
            self.shapes[role] = model_shape(self.inputs.source(role) or self.inputs.base, kind)
        shape = self.shapes[role]
        if same_vocab and shape.vocab_size != self.base.vocab_size:
            raise PlanError(
                f"{role.replace('_', '-')} {shape.source}: vocab_size={shape.vocab_size} differs from the "
                f"base's {self.base.vocab_size}; DExperts shifts the base logits, so the experts must share "
                "its vocabulary"
            )
        return shape

    def cached(self, role: str, *, same_vocab: bool = False, **rows: float) -> Term:
        return cached_term(self.shape(role, same_vocab), self.b, self.t, self.p, **rows)

    def uncached(self, role: str, *, same_vocab: bool = False) -> Term:
        return uncached_term(self.shape(role, same_vocab), self.t, self.p)

    def otter(self) -> Term:
        # split: the inserted parameters run beside the base; fused: the widened checkpoint runs instead of it
        inserted = cached_term(self.otter_shape, self.b, self.t, self.p)
        return (
            self.cached(BASE_ROLE) + inserted if PLANNED_LAYOUTS[self.inputs.layout].beside_base else inserted
        )
