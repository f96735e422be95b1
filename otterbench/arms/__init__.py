"""The decoding arms of a matched workload: `build_arm(name, models, otter, engine)` and what each arm returns.

Every arm generates exactly N new tokens per prompt (no stop on EOS), greedily, over left-padded batches,
and counts its forward calls per model; see docs/arms.md for each arm's definition and counters. An arm's
facts and its build live in its spec (otterbench/arms/units/, found through arms/registry.py).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from otterbench.arms.registry import arm_info, arm_names, register_arm
from otterbench.arms.spec import ArmSpec, Knob
from otterbench.backends import DEFAULT_BACKEND, backend_spec
from otterbench.models.roles import OTTER_ROLE

if TYPE_CHECKING:
    from otterbench.arms.base import Arm, ArmOutput, NullObserver, StepObserver, call_keys

# names from torch-using modules load on first use, so that reading the registry (suites, the CLI's option
# checks) never imports torch
_LAZY = {
    name: "otterbench.arms.base" for name in ("call_keys", "Arm", "ArmOutput", "NullObserver", "StepObserver")
}

__all__ = [
    "Arm",
    "ArmOutput",
    "ArmSpec",
    "Knob",
    "NullObserver",
    "StepObserver",
    "arm_info",
    "arm_names",
    "build_arm",
    "call_keys",
    "register_arm",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _vocab(model: Any) -> int:
    return int(model.config.vocab_size)


def _gather(spec: ArmSpec, models: Any, otter: Any) -> dict[str, Any]:
    def model(role: str) -> Any:
        return models.get(role) if isinstance(models, Mapping) else getattr(models, role, None)

    found = {role: otter if role == OTTER_ROLE else model(role) for role in spec.needs}
    missing = [role for role, model in found.items() if model is None]
    if missing:
        fix = (
            "pass otter=insert_otter(base, spec)" if missing == ["otter"] else "load a model set that has it"
        )
        raise ValueError(f"arm {spec.name} needs model(s) {', '.join(missing)}, which are missing: {fix}")
    return found


def _check_shared_vocab(name: str, found: dict[str, Any]) -> None:
    sizes = {role: _vocab(model) for role, model in found.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"arm {name} needs models sharing one vocabulary; got vocab sizes {sizes}")


def build_arm(name: str, models: Any, otter: Any = None, engine: str = DEFAULT_BACKEND) -> Arm:
    """The arm called `name` over `models` (role -> model, or a ModelSet: .base, ...) or `otter`,
    decoding under the step-level backend `engine` ("eager" or "compiled": see otterbench/backends/)."""
    spec = arm_info(name)  # unknown names raise here, listing the known ones
    backend = backend_spec(engine)
    if backend.kind != "step":
        raise ValueError(
            f"engine={engine!r} owns its decode loop: run the arm through otterbench.arms.generated"
        )
    found = _gather(spec, models, otter)
    _check_shared_vocab(name, found)
    if OTTER_ROLE in found and getattr(otter.spec, "signal", "vocab") != "vocab":
        raise ValueError(
            f"arm {name} needs OtterSpec.signal='vocab', got {otter.spec.signal!r}: re-insert with it"
        )
    arm = spec.build(found)
    arm.knobs = spec.knobs
    first = next(iter(found.values()))
    arm.vocab_size = _vocab(first)
    arm.engine = backend.create(arm, next(first.parameters()).device)
    return arm
