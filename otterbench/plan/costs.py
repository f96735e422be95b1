"""Predict each arm's space and time at paper scale from configs alone: meta-device models, closed forms.

Notation (per model): P parameters (tied weights once), P_lin the parameters of its Linear layers (the
matmuls; embedding tables and norms are lookups and scalings), L layers, h query heads, g kv heads, hd head
dim, b bytes per element of `dtype`, T the context, B the batch, k the ARGS candidates.
- KV cache per token and sequence: `2*L*g*hd*b`.
- Decode FLOPs per generated token: `2*P_lin + 4*L*h*hd*T` (QK^T and AV each `2*h*hd*T` per layer).
- Prefill FLOPs per prompt token: `2*P_lin + 2*L*h*hd*P` at prompt length P (causal: P/2 keys on average).
  These formulas live in plan/flops.py, shared with `run`'s efficiency columns and bench-insert.
- Prefill of one batch, predicted apart from decode: FLOPs `B*P*prefill` per model row, bytes every weight
  once plus the KV it writes (`B*P*kv` per cached row); its time at equal efficiency is the roofline of both.
- Recompute without a cache (dexperts-faithful): each new token re-runs the T-token sequence, `T*prefill`.
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

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Literal

from otterbench.arms.registry import ARMS, counterparts
from otterbench.dtypes import DTYPE_BYTES
from otterbench.models.roles import model_role
from otterbench.otter.spec import (
    DEFAULT_RATIO,
    BaseDims,
    OtterSpec,
    count_fused_extra_parameters,
    count_inserted_parameters,
)
from otterbench.plan.flops import (
    decode_bytes_per_step,
    decode_flops,
    kv_bytes_per_token,
    prefill_flops,
)
from otterbench.plan.layouts import PLANNED_LAYOUTS, otter_shape, stored_extra_parameters
from otterbench.plan.shapes import (
    ModelShape,
    PlanError,
    config_from_dict,
    model_shape,
    read_config,
)

if TYPE_CHECKING:
    from transformers import PretrainedConfig

H100_RIDGE_FLOPS_PER_BYTE = 989e12 / 3.35e12
Task = str


def planned_tasks() -> tuple[str, ...]:
    """The tasks whose arms carry a cost term (the speculative task, accel, has none yet)."""
    return tuple(dict.fromkeys(spec.task for spec in ARMS.values() if spec.task and spec.cost))


@dataclass(frozen=True)
class PlanInputs:
    """What to plan: the models, the Otter insertion and the workload, validated once here."""

    base: str
    task: Task = "args"
    reward_model: str | None = None  # None: a reward model of the base's size and shape
    expert: str | None = None  # None: the base's shape
    anti_expert: str | None = None  # None: the base's shape
    ratio: float = DEFAULT_RATIO
    extra_hidden: int | None = None  # overrides ratio for dx
    extra_kv_heads: int | None = None  # overrides ratio for gx
    extra_ffn: int | None = None  # overrides ratio for mx
    signal: Literal["vocab", "scalar"] = "vocab"
    k: int = 10
    batch_size: int = 1
    context: int = 1024
    dtype: str = "bfloat16"
    ridge_flops_per_byte: float = H100_RIDGE_FLOPS_PER_BYTE
    layout: str = "split"  # how the Otter arms run (plan/layouts.py): beside the base or widened
    prompt_length: int | None = None  # P of the prefill prediction; None: the context

    def source(self, role: str) -> str | None:
        """The config source given for a model role (None: planned with the base's shape)."""
        return self.base if role == "base" else getattr(self, role, None)

    def __post_init__(self) -> None:
        if self.task not in planned_tasks():
            raise PlanError(
                f"task={self.task!r} is not priced by the planner: expected one of {planned_tasks()}"
            )
        if self.dtype not in DTYPE_BYTES:
            raise PlanError(f"dtype={self.dtype!r} is invalid: expected one of {tuple(DTYPE_BYTES)}")
        for name in ("k", "batch_size", "context", "prompt_length"):
            value = getattr(self, name)
            if name == "prompt_length" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PlanError(f"{name}={value!r} is invalid: expected an integer >= 1")
        if any(self.signal not in spec.signals for spec in _planned(self.task, "otter")):
            raise PlanError(
                f"signal={self.signal!r} is invalid for {self.task}: its signal shifts logits, use vocab"
            )
        if self.layout not in PLANNED_LAYOUTS:
            raise PlanError(f"layout={self.layout!r} is invalid: expected one of {tuple(PLANNED_LAYOUTS)}")
        if not 0 < self.ridge_flops_per_byte < math.inf:
            raise PlanError(
                f"--ridge={self.ridge_flops_per_byte!r} is invalid: expected a finite number > 0 (FLOPs per byte)"
            )

    @property
    def prompt(self) -> int:
        """Prompt tokens per sequence of the prefill prediction (the context when not given)."""
        return self.prompt_length or self.context


@dataclass(frozen=True)
class _Term:
    """One model's share of an arm; fields add up across the models an arm runs."""

    parameters: int
    decode_flops: float  # per generated token
    prefill_flops: float  # per prompt token, all the rows it is prefilled in
    kv_bytes_per_token: int  # held, per sequence and context token
    kv_moved_bytes_per_token: int  # read or copied each decode step, per sequence and context token
    kv_transient_bytes: int  # written each step, per sequence, independent of context
    prefill_kv_bytes_per_token: int  # written by the prefill, per sequence and prompt token

    def __add__(self, other: _Term) -> _Term:
        return _Term(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


def _cached(
    shape: ModelShape,
    b: int,
    context: int,
    prompt: int,
    rows: int = 1,
    cache_rows: int = 1,
    moved_rows: int = 1,
    prefills: int = 1,
    transient_rows: int = 0,
) -> _Term:
    kv = kv_bytes_per_token(shape, b)
    return _Term(
        parameters=shape.parameters,
        decode_flops=rows * decode_flops(shape, context),
        prefill_flops=prefills * prefill_flops(shape, prompt),
        kv_bytes_per_token=cache_rows * kv,
        kv_moved_bytes_per_token=moved_rows * kv,
        kv_transient_bytes=transient_rows * kv,
        prefill_kv_bytes_per_token=prefills * kv,
    )


def _uncached(shape: ModelShape, context: int, prompt: int) -> _Term:
    # no cache: every new token re-runs the whole T-token sequence; the prefill is one forward, nothing kept
    return _Term(
        shape.parameters, context * prefill_flops(shape, context), prefill_flops(shape, prompt), 0, 0, 0, 0
    )


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


def _planned(task: str, role: str | None = None) -> list[Any]:
    """The specs of the arms the planner prices for `task` (the base arm included), in registry order."""
    return [
        spec
        for spec in ARMS.values()
        if spec.cost and spec.task in (None, task) and role in (None, spec.role)
    ]


def planned_roles(task: str) -> tuple[str, ...]:
    """The separate model roles the priced arms of `task` run (their sources are planner inputs)."""
    specs = _planned(task)
    return tuple(
        dict.fromkeys(role for spec in specs for role in spec.needs if role not in ("base", "otter"))
    )


class _Shapes:
    """The CostModel an arm's cost term is handed (otterbench/arms/spec.py): its models' shares by role."""

    def __init__(self, inputs: PlanInputs, base: ModelShape, otter: ModelShape) -> None:
        self.inputs, self.base, self.otter_shape = inputs, base, otter
        self.k, self.b, self.t, self.p = inputs.k, DTYPE_BYTES[inputs.dtype], inputs.context, inputs.prompt

    def shape(self, role: str, same_vocab: bool = False) -> ModelShape:
        """A role's shape: its source when given, else the base's shape (as a model of the role's head)."""
        if role == "base":
            return self.base
        kind = "reward" if model_role(role).head == "reward" else "causal-lm"
        shape = model_shape(self.inputs.source(role) or self.inputs.base, kind)
        if same_vocab and shape.vocab_size != self.base.vocab_size:
            raise PlanError(
                f"{role.replace('_', '-')} {shape.source}: vocab_size={shape.vocab_size} differs from the "
                f"base's {self.base.vocab_size}; DExperts shifts the base logits, so the experts must share "
                "its vocabulary"
            )
        return shape

    def cached(self, role: str, *, same_vocab: bool = False, **rows: int) -> _Term:
        return _cached(self.shape(role, same_vocab), self.b, self.t, self.p, **rows)

    def uncached(self, role: str, *, same_vocab: bool = False) -> _Term:
        return _uncached(self.shape(role, same_vocab), self.t, self.p)

    def otter(self) -> _Term:
        # split: the inserted parameters run beside the base; fused: the widened checkpoint runs instead of it
        inserted = _cached(self.otter_shape, self.b, self.t, self.p)
        return self.cached("base") + inserted if PLANNED_LAYOUTS[self.inputs.layout].beside_base else inserted


def _arm_cost(name: str, term: _Term, inputs: PlanInputs) -> ArmCost:
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


def saved_pct(base: float, separate: float, otter: float) -> float | None:
    """100*(1 - extra(otter)/extra(separate)), extra = arm - base; None when the separate arm adds nothing."""
    extra_separate = separate - base
    return None if extra_separate <= 0 else 100 * (1 - (otter - base) / extra_separate)


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
    pairs = counterparts()
    return [_saving(arms["base"], arms[name], arms[pairs[name]]) for name in arms if name in pairs]


def plan_costs(inputs: PlanInputs) -> PlanResult:
    """Predict every arm's parameters, bytes and FLOPs, and Otter's savings, from configs alone."""
    base_config = config_from_dict(read_config(inputs.base))
    dims = BaseDims.from_config(base_config)
    spec = _spec(inputs, base_config)
    inserted = count_inserted_parameters(dims, spec)
    base = model_shape(inputs.base, "causal-lm")
    otter = otter_shape(inputs.layout, base_config, spec)
    shapes = _Shapes(inputs, base, otter)
    arms = {spec.name: _arm_cost(spec.name, spec.cost(shapes), inputs) for spec in _planned(inputs.task)}
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
    planned = _planned(inputs.task)
    if any(inputs.source(role) is None for role in planned_roles(inputs.task)):
        notes.append(f"separate model(s) not given: planned with the base's shape ({inputs.base})")
    notes += [spec.cost_note for spec in planned if spec.cost_note]
    if inputs.signal == "scalar":
        notes.append("scalar signal scores the prefix, not each of the k candidates; counted as one forward")
    return notes


def sweep_ratios(inputs: PlanInputs, ratios: list[float]) -> list[PlanResult]:
    """One plan per insertion ratio (explicit extra sizes are dropped so the ratio decides them)."""
    plain = replace(inputs, extra_hidden=None, extra_kv_heads=None, extra_ffn=None)
    return [plan_costs(replace(plain, ratio=ratio)) for ratio in ratios]
