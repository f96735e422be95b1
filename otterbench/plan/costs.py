"""Predict each arm's space and time at paper scale from configs alone: meta-device models, closed forms.

Notation (per model): P parameters (tied weights once), P_lin the parameters of its Linear layers (the
matmuls; embedding tables and norms are lookups and scalings), L layers, h query heads, g kv heads, hd head
dim, b bytes per element of `dtype`, T the context, B the batch, k the ARGS candidates.
- KV cache per token and sequence: `2*L*g*hd*b`.
- Decode FLOPs per generated token: `2*P_lin + 4*L*h*hd*T` (QK^T and AV each `2*h*hd*T` per layer).
- Prefill FLOPs per prompt token: `2*(P_lin - P_head) + 2*P_head/P + 2*L*h*hd*P` at prompt length P (causal:
  P/2 keys on average; P_head the output heads' parameters, run at the last position: `logits_to_keep=1`).
  These formulas live in plan/flops.py, shared with `run`'s efficiency columns and bench-insert.
- Prefill of one batch, predicted apart from decode: FLOPs `B*P*prefill` per model row, bytes every weight
  once plus the KV it writes (`B*P*kv` per cached row); its time at equal efficiency is the roofline of both.
- Recompute without a cache (dexperts-faithful): each new token re-runs the T-token sequence, its heads at
  every position as the reference computes them: `T*(2*P_lin + 2*L*h*hd*T)`.
- Otter (split layout) adds `count_inserted_parameters`; its matmuls are those minus the extra embedding
  table `V*dx` and norms `(2L+1)*dx`, its attention `4*L*hx*hd*T`, its cache `2*L*gx*hd*b`.
  Otter (fused layout, `layout="fused"`) runs the widened checkpoint instead of the base, zero blocks included.
  What each layout stores comes from one function, plan/layouts.py `otter_shape`.
- Bytes moved per decode step: every weight read once per step + the KV cache read at B x T, plus the rows an
  arm's algorithm copies (args-faithful: `FAITHFUL_KV_ROWS_PER_CANDIDATE` x k rows, its cost term in
  otterbench/arms/units/args.py).
The savings are limits: the share of a separate arm's extra cost Otter saves when every arm moves its bytes
(and does its FLOPs) at the same efficiency. A measured saving above it means the separate arm ran at a lower
efficiency than the Otter arm (docs/planner.md).
Which bound: an arm's decode intensity is `B*decode_flops / bytes_per_step`, about
`2*B*P_lin / (b*P + B*T*kv)`. At batch 1 that is ~1 FLOP/byte in bf16, far below a GPU's ridge point
(`ridge_flops_per_byte`, default H100 SXM: 989 dense bf16 TFLOP/s / 3.35 TB/s = 295), so batch-1 decode is
memory-bound and the bytes model predicts its time. Large batches amortise the weights but not the KV reads,
so decode turns compute-bound (the FLOPs model) only when `B` is large and `T*kv` small against `P_lin`;
prefill and no-cache recompute are compute-bound. `roofline_bytes = max(flops/ridge, bytes)` picks per arm.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from otterbench.arms.registry import ARMS, counterparts
from otterbench.arms.spec import REFERENCE_ROLE
from otterbench.dtypes import DTYPE_BYTES
from otterbench.otter.spec import (
    BaseDims,
    OtterSpec,
    count_fused_extra_parameters,
    count_inserted_parameters,
)
from otterbench.plan.flops import decode_bytes_per_step
from otterbench.plan.inputs import PlanInputs, planned, planned_roles
from otterbench.plan.layouts import PLANNED_LAYOUTS, otter_shape, stored_extra_parameters
from otterbench.plan.shapes import ModelShape, config_from_dict, model_shape, read_config
from otterbench.plan.terms import Shapes, Term
from otterbench.saving import saved_pct

if TYPE_CHECKING:
    from transformers import PretrainedConfig


@dataclass(frozen=True)
class ArmCost:
    """Predicted cost of one arm; bytes, FLOPs and FLOPs/byte as named."""

    name: str
    role: str
    parameters: int
    weights_bytes: int
    weights_bytes_by_dtype: dict[str, int]
    kv_bytes_per_token: int  # per sequence and context token
    kv_transient_bytes: int  # per sequence, each step
    space_bytes: int  # weights + KV at context x batch + transient
    flops_per_token: float  # decode, per generated token
    prefill_flops_per_token: float
    bytes_per_step: int  # decode, at batch
    arithmetic_intensity: float  # batch * flops_per_token / bytes_per_step
    bound: str  # "memory" or "compute" against the ridge point
    roofline_bytes: float  # max(flops/ridge, bytes): step time in units of bytes at full bandwidth
    prefill_flops: float  # one batch's prefill: batch x prompt x prefill_flops_per_token
    prefill_bytes: int  # one batch's prefill: every weight once + the KV it writes
    prefill_roofline_bytes: float  # max(prefill_flops/ridge, prefill_bytes)


@dataclass(frozen=True)
class Savings:
    """Predicted share of a separate arm's extra cost (over base) that its Otter counterpart saves, in %."""

    separate_arm: str
    otter_arm: str
    space_pct: float | None
    time_flops_pct: float | None  # compute-bound (large batch)
    time_bytes_pct: float | None  # memory-bound (batch 1 decode)
    time_roofline_pct: float | None  # whichever bound each arm sits at, at this batch: the decode limit
    prefill_pct: float | None  # one batch's prefill, roofline: the prefill limit


@dataclass(frozen=True)
class PlanResult:
    """Every arm's predicted cost and each separate arm's predicted savings, with the inputs behind them."""

    inputs: PlanInputs
    spec: OtterSpec
    inserted_parameters: int  # split layout: what Otter adds, no zero blocks
    fused_extra_parameters: int  # fused layout: what the engine-ready checkpoint stores beyond the base
    stored_extra_parameters: dict[str, int]  # every layout (plan/layouts.py): what it stores beyond the base
    arms: list[ArmCost]
    savings: list[Savings]
    notes: list[str] = field(default_factory=list)

    def arm(self, name: str) -> ArmCost:
        """The arm called `name`."""
        return next(arm for arm in self.arms if arm.name == name)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: inputs, the Otter insertion, arms, savings, notes."""
        b = DTYPE_BYTES[self.inputs.dtype]
        otter = {
            "spec": self.spec.to_dict(),
            "inserted_parameters": self.inserted_parameters,
            "fused_extra_parameters": self.fused_extra_parameters,
            "fused_extra_weights_bytes": self.fused_extra_parameters * b,
            "stored_extra_parameters": dict(self.stored_extra_parameters),
        }
        return {
            "inputs": asdict(self.inputs),
            "otter": otter,
            "arms": [asdict(arm) for arm in self.arms],
            "savings": [asdict(saving) for saving in self.savings],
            "notes": list(self.notes),
        }


def _spec(inputs: PlanInputs, base_config: PretrainedConfig) -> OtterSpec:
    spec = OtterSpec.from_ratio(base_config, inputs.ratio, signal=inputs.signal)
    overrides = {
        "extra_hidden_size": inputs.extra_hidden,
        "extra_kv_heads": inputs.extra_kv_heads,
        "extra_intermediate_size": inputs.extra_ffn,
    }
    spec = replace(spec, **{name: value for name, value in overrides.items() if value is not None})
    spec.validate_for(BaseDims.from_config(base_config))
    return spec


def _arm_cost(name: str, term: Term, inputs: PlanInputs) -> ArmCost:
    b, batch, context = DTYPE_BYTES[inputs.dtype], inputs.batch_size, inputs.context
    weights = term.parameters * b
    transient = batch * term.kv_transient_bytes
    bytes_per_step = decode_bytes_per_step(
        weights, batch, context, term.kv_moved_bytes_per_token, term.kv_transient_bytes
    )
    flops_per_step = batch * term.decode_flops
    intensity = flops_per_step / bytes_per_step
    prefill_flops_batch = batch * inputs.prompt * term.prefill_flops
    prefill_bytes = weights + batch * inputs.prompt * term.prefill_kv_bytes_per_token
    return ArmCost(
        name=name,
        role=ARMS[name].role,
        parameters=term.parameters,
        weights_bytes=weights,
        weights_bytes_by_dtype={dtype: term.parameters * size for dtype, size in DTYPE_BYTES.items()},
        kv_bytes_per_token=term.kv_bytes_per_token,
        kv_transient_bytes=term.kv_transient_bytes,
        space_bytes=weights + batch * context * term.kv_bytes_per_token + transient,
        flops_per_token=term.decode_flops,
        prefill_flops_per_token=term.prefill_flops,
        bytes_per_step=bytes_per_step,
        arithmetic_intensity=intensity,
        bound="compute" if intensity >= inputs.ridge_flops_per_byte else "memory",
        roofline_bytes=max(flops_per_step / inputs.ridge_flops_per_byte, bytes_per_step),
        prefill_flops=prefill_flops_batch,
        prefill_bytes=prefill_bytes,
        prefill_roofline_bytes=max(prefill_flops_batch / inputs.ridge_flops_per_byte, prefill_bytes),
    )


def _saving(base: ArmCost, separate: ArmCost, otter: ArmCost) -> Savings:
    def pct(metric: str) -> float | None:
        return saved_pct(getattr(base, metric), getattr(separate, metric), getattr(otter, metric))

    return Savings(
        separate_arm=separate.name,
        otter_arm=otter.name,
        space_pct=pct("space_bytes"),
        time_flops_pct=pct("flops_per_token"),
        time_bytes_pct=pct("bytes_per_step"),
        time_roofline_pct=pct("roofline_bytes"),
        prefill_pct=pct("prefill_roofline_bytes"),
    )


def _savings(arms: dict[str, ArmCost]) -> list[Savings]:
    pairs, base = counterparts(), next(arm for arm in arms.values() if arm.role == REFERENCE_ROLE)
    return [_saving(base, arms[name], arms[pairs[name]]) for name in arms if name in pairs]


def plan_costs(inputs: PlanInputs) -> PlanResult:
    """Predict every arm's parameters, bytes and FLOPs, and Otter's savings, from configs alone."""
    base_config = config_from_dict(read_config(inputs.base))
    dims = BaseDims.from_config(base_config)
    spec = _spec(inputs, base_config)
    inserted = count_inserted_parameters(dims, spec)
    base = model_shape(inputs.base, "causal-lm")
    otter = otter_shape(inputs.layout, base_config, spec)
    shapes = Shapes(inputs, base, otter)
    arms = {spec.name: _arm_cost(spec.name, spec.cost(shapes), inputs) for spec in planned(inputs.task)}
    tied = bool(getattr(base_config, "tie_word_embeddings", False))
    return PlanResult(
        inputs=inputs,
        spec=spec,
        inserted_parameters=inserted,
        fused_extra_parameters=count_fused_extra_parameters(dims, spec, tied),
        stored_extra_parameters=_stored_by_layout(base_config, spec, base),
        arms=list(arms.values()),
        savings=_savings(arms),
        notes=_notes(inputs),
    )


def _stored_by_layout(base_config: Any, spec: OtterSpec, base: ModelShape) -> dict[str, int]:
    """What every layout that can hold this insertion stores beyond the base (a fused checkpoint cannot
    when its widened hidden size is not a multiple of its heads: that layout is left out)."""
    stored = {}
    for layout in PLANNED_LAYOUTS:
        try:
            stored[layout] = stored_extra_parameters(layout, base_config, spec, base)
        except ValueError:
            continue
    return stored


def _notes(inputs: PlanInputs) -> list[str]:
    notes = []
    specs = planned(inputs.task)
    missing = [role for role in planned_roles(inputs.task) if inputs.source(role) is None]
    if missing:
        flags = ", ".join("--" + role.replace("_", "-") for role in missing)
        notes.append(f"not given: {flags}; planned with the base's shape ({inputs.base})")
    notes += [spec.cost_note.format_map(vars(inputs)) for spec in specs if spec.cost_note]
    if inputs.signal == "scalar":
        notes.append("scalar signal scores the prefix, not each of the k candidates; counted as one forward")
    return notes


def sweep_ratios(inputs: PlanInputs, ratios: list[float]) -> list[PlanResult]:
    """One plan per insertion ratio (explicit extra sizes are dropped so the ratio decides them)."""
    plain = replace(inputs, extra_hidden=None, extra_kv_heads=None, extra_ffn=None)
    return [plan_costs(replace(plain, ratio=ratio)) for ratio in ratios]
