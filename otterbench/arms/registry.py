"""The arm registry: every arm's spec, found by name; suites, runs, results, report, gate and planner read it.

An arm's role places it in a savings comparison: "base" (the LLM alone), "separate" (the LLM steered by
separate model(s)), "otter" (the inserted LLM) or "integration" (the LLM served as Otter's integration
serves it, nothing inserted: the integration tax). A separate arm names the Otter arm that answers it and
the kind of baseline it is ("faithful" = as its reference code, "optimized" = what a skilled engineer writes,
"token-level" = a separate model that scores every candidate in one forward, GenARM's design).
The specs live in `otterbench/arms/units/`; `register_arm` adds one from anywhere (a plugin, a test).
Torch-free.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any

from otterbench.arms.spec import REFERENCE_ROLE, ROLES, ArmSpec, Knob, TaskSpec
from otterbench.arms.units import BUILT_IN
from otterbench.knobs import knob_problems as check_knobs
from otterbench.models.roles import OTTER_ROLE
from otterbench.models.roles import ROLES as MODEL_ROLES

ARMS: dict[str, ArmSpec] = {}
TASK_SPECS: dict[str, TaskSpec] = {}  # what each task gives distillation, by name


def register_arm(spec: ArmSpec) -> ArmSpec:
    """Add an arm; its name must be new, its role, models and knobs known or consistent with the others'."""
    if spec.name in ARMS:
        raise ValueError(f"arm {spec.name!r} is already registered (by {ARMS[spec.name].origin})")
    if spec.role not in ROLES:
        raise ValueError(f"arm {spec.name!r}: role {spec.role!r} is not one of {', '.join(ROLES)}")
    unknown = [role for role in spec.needs if role not in MODEL_ROLES and role != OTTER_ROLE]
    if unknown:
        raise ValueError(f"arm {spec.name!r} needs unknown model role(s) {unknown}: register them first")
    for knob in spec.knobs:
        known = knobs().get(knob.name)
        if known is not None and known != knob:
            raise ValueError(f"arm {spec.name!r}: knob {knob.name!r} differs from the one its task declared")
    ARMS[spec.name] = spec
    return spec


def register_task(spec: TaskSpec) -> TaskSpec:
    """Add what a task gives distillation; its name must be new."""
    if spec.name in TASK_SPECS:
        raise ValueError(f"task {spec.name!r} is already registered")
    TASK_SPECS[spec.name] = spec
    return spec


def task_spec(name: str, distill: str | None = None) -> TaskSpec:
    """The task `name` (one whose `distill` kind is `distill`, when given); else ValueError naming them."""
    known = [task for task, spec in TASK_SPECS.items() if distill in (None, spec.distill)]
    if name not in known:
        raise ValueError(f"task={name!r} is invalid: choose one of {', '.join(known)}")
    return TASK_SPECS[name]


def unregister_arm(name: str) -> None:
    """Remove an arm registered by `register_arm` (tests use it to clean up)."""
    ARMS.pop(name, None)


def arm_names() -> tuple[str, ...]:
    """Every registered arm, in registry order."""
    return tuple(ARMS)


def arm_info(name: str) -> ArmSpec:
    """The spec of `name`; unknown names raise ValueError listing the known ones."""
    if name not in ARMS:
        raise ValueError(f"unknown arm {name!r}: choose one of {', '.join(ARMS)}")
    return ARMS[name]


def arm_role(name: str, default: str = "base") -> str:
    """An arm's role; `default` for a name no registered arm has (a results file from another install)."""
    spec = ARMS.get(name)
    return spec.role if spec else default


def arm_decides_as(name: str) -> str | None:
    """The arm whose tokens `name` reproduces in exact arithmetic (ArmSpec.decides_as); None if none."""
    spec = ARMS.get(name)
    return spec.decides_as if spec else None


def reference_spec() -> ArmSpec:
    """The reference every other arm is measured from: the registered arm whose role is REFERENCE_ROLE."""
    return next(spec for spec in ARMS.values() if spec.role == REFERENCE_ROLE)


def decider(name: str) -> str:
    """The call counter of the model deciding an arm's tokens ("llm" for a name no registered arm has)."""
    spec = ARMS.get(name)
    return spec.decider if spec else "llm"


def counterparts() -> dict[str, str]:
    """separate arm -> the Otter arm that answers it."""
    return {name: spec.counterpart for name, spec in ARMS.items() if spec.counterpart}


def tasks() -> tuple[str, ...]:
    """The suite tasks, in the order their first arm registered."""
    return tuple(dict.fromkeys(spec.task for spec in ARMS.values() if spec.task))


def knobs() -> dict[str, Knob]:
    """Every task knob of every registered arm, once each, in registry order."""
    found: dict[str, Knob] = {}
    for spec in ARMS.values():
        for knob in spec.knobs:
            found.setdefault(knob.name, knob)
    return found


def knob_defaults() -> dict[str, Any]:
    """name -> default of every knob."""
    return {name: knob.default for name, knob in knobs().items()}


def knob_problems(values: Mapping[str, Any], vocab_size: int) -> list[str]:
    """Knob values out of their bounds or beyond a vocabulary of `vocab_size` tokens (k > V), one line each."""
    return check_knobs(knobs(), values, vocab_size)


def model_roles(arms: Iterable[str]) -> set[str]:
    """The models a set of arms loads: always the base, plus every separate model they need."""
    return {"base"} | {role for arm in arms for role in arm_info(arm).needs if role != OTTER_ROLE}


def baseline_kind(separate_arm: str) -> str:
    """ "faithful", "optimized" or "token-level": which kind of baseline a separate arm is."""
    return arm_info(separate_arm).baseline or "optimized"


def ensure_registered(name: str, origin: str) -> ArmSpec:
    """The spec of `name`, importing `origin` first when it is not registered yet (a fresh arm process)."""
    if name not in ARMS and origin:
        importlib.import_module(origin)
    return arm_info(name)


for _module in BUILT_IN:
    _unit = importlib.import_module(f"otterbench.arms.units.{_module}")
    for _spec in _unit.SPECS:
        register_arm(_spec)
    for _task in getattr(_unit, "TASKS", ()):
        register_task(_task)
