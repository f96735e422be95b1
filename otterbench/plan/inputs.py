"""What the planner is asked: `PlanInputs` (models, insertion, workload), validated once, and which arms and
model roles it prices for a task (the arms whose spec carries a cost term; the roles they need, from
otterbench/models/roles.py: a new role is priced without a planner edit).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from otterbench.arms.registry import ARMS
from otterbench.arms.units.args import K
from otterbench.backends.vllm.args_engines import CUDA_BLOCK_TOKENS
from otterbench.dtypes import DTYPE_BYTES
from otterbench.models.roles import BASE_ROLE, OTTER_ROLE, role_flag, role_names
from otterbench.otter.spec import DEFAULT_RATIO
from otterbench.plan.layouts import PLANNED_LAYOUTS
from otterbench.plan.shapes import PlanError

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
    # model role (otterbench/models/roles.py) -> config source of a separate model; a role not given is
    # planned with the base's shape (as a model of the role's head)
    models: Mapping[str, str] = field(default_factory=dict)
    ratio: float = DEFAULT_RATIO
    extra_hidden: int | None = None  # overrides ratio for dx
    extra_kv_heads: int | None = None  # overrides ratio for gx
    extra_ffn: int | None = None  # overrides ratio for mx
    signal: Literal["vocab", "scalar"] = "vocab"
    k: int = K.default
    batch_size: int = 1
    context: int = 1024
    dtype: str = "bfloat16"
    ridge_flops_per_byte: float = H100_RIDGE_FLOPS_PER_BYTE
    layout: str = "split"  # how the Otter arms run (plan/layouts.py): beside the base or widened
    prompt_length: int | None = None  # P of the prefill prediction; None: the context
    # tokens per KV block of vLLM's prefix cache (args-vllm re-sends each sequence; whole blocks are served)
    vllm_block_size: int = CUDA_BLOCK_TOKENS

    def source(self, role: str) -> str | None:
        """The config source given for a separate model role (None: planned with the base's shape)."""
        return self.models.get(role)

    def __post_init__(self) -> None:
        unknown = [role for role in self.models if role not in role_names() or role == BASE_ROLE]
        if unknown:
            separate = [role for role in role_names() if role != BASE_ROLE]
            raise PlanError(f"model role(s) {unknown} are not separate models: expected one of {separate}")
        if self.task not in planned_tasks():
            raise PlanError(
                f"task={self.task!r} is not priced by the planner: expected one of {planned_tasks()}"
            )
        unused = [role for role in self.models if role not in planned_roles(self.task)]
        if unused:
            flags = ", ".join(role_flag(role) for role in unused)
            used = ", ".join(role_flag(role) for role in planned_roles(self.task)) or "none"
            raise PlanError(
                f"{flags}: no arm the planner prices for task {self.task} loads it (they load {used}): "
                f"drop {flags} or plan the task that uses it"
            )
        if self.dtype not in DTYPE_BYTES:
            raise PlanError(f"dtype={self.dtype!r} is invalid: expected one of {tuple(DTYPE_BYTES)}")
        for name in ("k", "batch_size", "context", "prompt_length", "vllm_block_size"):
            value = getattr(self, name)
            if name == "prompt_length" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PlanError(f"{name}={value!r} is invalid: expected an integer >= 1")
        if any(self.signal not in spec.signals for spec in planned(self.task, "otter")):
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


def planned(task: str, role: str | None = None) -> list[Any]:
    """The specs of the arms the planner prices for `task` (the base arm included), in registry order."""
    return [
        spec
        for spec in ARMS.values()
        if spec.cost and spec.task in (None, task) and role in (None, spec.role)
    ]


def planned_roles(task: str) -> tuple[str, ...]:
    """The separate model roles the priced arms of `task` run (their sources are planner inputs)."""
    specs = planned(task)
    return tuple(
        dict.fromkeys(role for spec in specs for role in spec.needs if role not in (BASE_ROLE, OTTER_ROLE))
    )
