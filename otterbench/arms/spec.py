"""What an arm is without building it: `ArmSpec`, the task `Knob`s it reads, and the planner's `CostModel`.

An arm is one unit: its spec module (`otterbench/arms/units/`) declares the registry facts (role, task, the
models it needs, the Otter arm that answers it), its knobs with defaults and help, how to build it from the
loaded models, its planner cost term and which decode backends may run it. Suites, the run options, the
results schema's enums and the planner read specs; no code anywhere branches on an arm's name.
Torch-free: the command line reads specs at start-up, so `build` imports the decoding code when called.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from otterbench.knobs import Knob

Role = Literal["base", "separate", "otter", "integration"]
# integration: the base served the way Otter's integration serves it, no parameter inserted (the engine's
# integration tax: its extra over the reference is what the one-line change alone costs)
ROLES: tuple[Role, ...] = ("base", "separate", "otter", "integration")
REFERENCE_ROLE: Role = "base"  # the arm every extra cost and every deviation is measured from
Baseline = Literal["faithful", "optimized", "token-level"]
__all__ = [
    "REFERENCE_ROLE",
    "ROLES",
    "ArmSpec",
    "TaskSpec",
    "Baseline",
    "CostModel",
    "Knob",
    "ModelsByRole",
    "Role",
]


class CostModel(Protocol):
    """What an arm's planner cost term is given (implemented by otterbench/plan/costs.py).

    Each method returns one model's share of an arm's cost; shares add with `+`.
    """

    k: int  # the ARGS candidates per step
    t: int  # the context T: KV length per sequence at a decode step
    vllm_block_size: int  # tokens per KV block of vLLM's prefix cache, which serves whole blocks only

    def cached(
        self,
        role: str,
        *,
        rows: float = 1,
        cache_rows: int = 1,
        moved_rows: int = 1,
        prefills: int = 1,
        transient_rows: float = 0,
        head_rows: float | None = None,
        same_vocab: bool = False,
    ) -> Any:
        """A model decoded with its KV cache: `rows` query rows per step (a mean where it varies), its output
        heads run at `head_rows` of them (default: all), the cache held/moved per row."""

    def uncached(self, role: str, *, same_vocab: bool = False) -> Any:
        """A model with no cache: every new token re-runs the whole sequence."""

    def otter(self) -> Any:
        """The Otter-inserted base in the run's layout (split: base + inserted; fused: the widened model)."""


ModelsByRole = Mapping[str, Any]  # role -> loaded model; "otter" -> the inserted LLM
Build = Callable[[ModelsByRole], Any]  # -> an Arm (otterbench/arms/base.py), decoding step by step
CostTerm = Callable[[CostModel], Any]


@dataclass(frozen=True)
class TaskSpec:
    """What a task gives distillation (`otterbench distill`); its rule and knobs live on its arms' specs.

    Declared once in the task's unit module (`TASKS`), beside its arms, so distillation asks the task
    rather than branching on its name. Callables import their torch code when called.
    """

    name: str
    # "signal": Otter's signal learns what the separate model(s) said (the teacher); "drafts": both drafts
    # learn the base's own continuations (otterbench/distillation/accel.py)
    distill: Literal["signal", "drafts"]
    teacher_needs: tuple[str, ...] = ()  # the model roles the teacher decodes with
    # (models, workload, device) -> Teacher (otterbench/arms/teacher.py), along the separate arm's trajectory
    teacher: Callable[[Any, Any, Any], Any] | None = None
    # the task's rule at teacher-forced steps: (logits [b,N,V], signal [b,N,V], workload, candidates
    # [b,N,k]) -> tokens [b,N], the student's pick its agreement with the teacher is counted on
    forced_choice: Callable[[Any, Any, Any, Any], Any] | None = None
    # a separate model role trained beside Otter on the same teacher, when the profile has it (ARGS: the
    # token-level reward model)
    side_student: str | None = None


@dataclass(frozen=True)
class ArmSpec:
    """Every fact about one arm, and how to build it."""

    name: str
    role: Role  # its place in a savings comparison: the LLM alone, separate model(s), or Otter
    task: str | None  # the suite task it belongs to; None = every task (the base arm)
    needs: tuple[str, ...]  # model roles (otterbench/models/roles.py), "otter" for the inserted LLM
    build: Build
    counterpart: str | None = None  # separate arms: the Otter arm whose savings are measured against it
    baseline: Baseline | None = None  # separate arms: which kind of baseline it is
    # the arm whose decisions this one computes in another form (same rule, other kernels or shapes): in exact
    # arithmetic their tokens are equal, and a run with both says whether they were (results/decisions.py)
    decides_as: str | None = None
    knobs: tuple[Knob, ...] = ()  # the task knobs its decisions read (shared with its task's other arms)
    cost: CostTerm | None = None  # the planner's cost term; None: the planner does not price it
    cost_note: str | None = None  # a caveat the planner prints beside its prediction ({input} fields filled)
    backends: tuple[str, ...] | None = None  # decode backends it may run under; None: any that accepts it
    # the arm's decision as one rule over a single model's next-token output, for generate-level backends
    # that own the decode loop: (logits [B,V], signal [B,V] or None, workload) -> next tokens [B,1]. None: it
    # needs more than one model per step (a separate reward model, experts, a draft) or varies what is fed.
    choose: Callable[[Any, Any, Any], Any] | None = None
    # the arm's own decode loop under the generate-level backends in `backends`, for a decision a backend's
    # per-step rule cannot express (a second model per step): (backend options, device) -> GenerateBackend,
    # used in place of the backend's own `create`. None: the backend decodes it with `choose`.
    engine_loop: Callable[[Any, Any], Any] | None = None
    signals: tuple[str, ...] = ("vocab",)  # Otter arms: the signal kinds the planner may price it with
    origin: str = ""  # the module that registered it: an arm process imports it to find the spec

    @property
    def decider(self) -> str:
        """The call counter of the model that decides each token (speculative metrics read it)."""
        return "otter" if self.role == "otter" else "llm"
