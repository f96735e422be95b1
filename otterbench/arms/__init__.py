"""The decoding arms of a matched workload: `build_arm(name, models, otter)` and what each arm returns.

Every arm generates exactly N new tokens per prompt (no stop on EOS), greedily, over left-padded batches,
and counts its forward calls per model; see docs/arms.md for each arm's definition and counters.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from otterbench.arms.registry import ARM_NAMES, ARM_NEEDS, ARM_ROLES, ENGINES, OTTER_COUNTERPART, arm_info

if TYPE_CHECKING:
    from otterbench.arms.base import CALL_KEYS, Arm, ArmOutput, NullObserver, StepObserver

# names from torch-using modules load on first use, so that reading the registry (suites, the CLI's option
# checks) never imports torch
_LAZY = {
    name: "otterbench.arms.base" for name in ("CALL_KEYS", "Arm", "ArmOutput", "NullObserver", "StepObserver")
}

__all__ = [
    "ARM_NAMES",
    "ARM_NEEDS",
    "ARM_ROLES",
    "CALL_KEYS",
    "ENGINES",
    "OTTER_COUNTERPART",
    "Arm",
    "ArmOutput",
    "NullObserver",
    "StepObserver",
    "build_arm",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _vocab(model: Any) -> int:
    return int(model.config.vocab_size)


def _gather(name: str, models: Any, otter: Any) -> dict[str, Any]:
    found = {role: otter if role == "otter" else getattr(models, role, None) for role in ARM_NEEDS[name]}
    missing = [role for role, model in found.items() if model is None]
    if missing:
        fix = (
            "pass otter=insert_otter(base, spec)" if missing == ["otter"] else "load a model set that has it"
        )
        raise ValueError(f"arm {name} needs model(s) {', '.join(missing)}, which are missing: {fix}")
    return found


def _check_shared_vocab(name: str, found: dict[str, Any]) -> None:
    sizes = {role: _vocab(model) for role, model in found.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"arm {name} needs models sharing one vocabulary; got vocab sizes {sizes}")


def build_arm(name: str, models: Any, otter: Any = None, engine: str = "eager") -> Arm:
    """The arm called `name` over `models` (a ModelSet: .base, .reward_model, .expert, .anti_expert) or `otter`,
    decoding under `engine` ("eager" or "compiled": see arms/engine.py)."""
    from otterbench.arms.args import args_faithful, args_optimized
    from otterbench.arms.dexperts import DExpertsCachedArm, DExpertsFaithfulArm
    from otterbench.arms.engine import build_engine
    from otterbench.arms.greedy import BaseArm
    from otterbench.arms.otter import OtterArm
    from otterbench.arms.speculative import OtterDraftArm, SeparateDraftArm
    from otterbench.arms.token_reward import TokenRewardArm

    arm_info(name)  # unknown names raise here, listing the known ones
    found = _gather(name, models, otter)
    _check_shared_vocab(name, found)
    if "otter" in found and getattr(otter.spec, "signal", "vocab") != "vocab":
        raise ValueError(
            f"arm {name} needs OtterSpec.signal='vocab', got {otter.spec.signal!r}: re-insert with it"
        )
    arm: Arm
    if name == "base":
        arm = BaseArm(found["base"])
    elif name == "args-faithful":
        arm = args_faithful(found["base"], found["reward_model"])
    elif name == "args-optimized":
        arm = args_optimized(found["base"], found["reward_model"])
    elif name == "args-token":
        arm = TokenRewardArm(found["base"], found["token_reward_model"])
    elif name == "dexperts-faithful":
        arm = DExpertsFaithfulArm(found["base"], found["expert"], found["anti_expert"])
    elif name == "dexperts-cached":
        arm = DExpertsCachedArm(found["base"], found["expert"], found["anti_expert"])
    elif name == "spec-separate":
        arm = SeparateDraftArm(found["base"], found["draft"])
    elif name == "otter-spec":
        arm = OtterDraftArm(otter)
    else:
        arm = OtterArm(name, otter)
    first = next(iter(found.values()))
    arm.vocab_size = _vocab(first)
    arm.engine = build_engine(engine, arm, next(first.parameters()).device)
    return arm
