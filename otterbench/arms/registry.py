"""The arm registry: every fact about an arm in one place, read by suites, runs, results, report and gate.

An arm's role places it in a savings comparison: "base" (the LLM alone), "separate" (the LLM steered by
separate model(s)) or "otter" (the inserted LLM). A separate arm names the Otter arm that answers it and
the kind of baseline it is ("faithful" = as its reference code, "optimized" = what a skilled engineer writes,
"token-level" = a separate model that scores every candidate in one forward, GenARM's design).
Task "accel" (speculative decoding) has one separate arm, `spec-separate`: the way users already run a draft
model (greedy assisted generation), counted as "optimized".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["base", "separate", "otter"]
# model roles an arm loads; "otter" is the inserted LLM, built from "base" by the run
ModelRole = Literal["base", "reward_model", "token_reward_model", "expert", "anti_expert", "draft", "otter"]


@dataclass(frozen=True)
class ArmInfo:
    """What otterbench knows about one arm without building it."""

    name: str
    role: Role
    task: str | None  # the suite task it belongs to; None = every task (the base arm)
    needs: tuple[ModelRole, ...]
    counterpart: str | None = None  # separate arms: the Otter arm whose savings are measured against it
    baseline: str | None = None  # separate arms: "faithful", "optimized" or "token-level"


ARMS: dict[str, ArmInfo] = {
    info.name: info
    for info in (
        ArmInfo("base", "base", None, ("base",)),
        ArmInfo("args-faithful", "separate", "args", ("base", "reward_model"), "otter-args", "faithful"),
        ArmInfo("args-optimized", "separate", "args", ("base", "reward_model"), "otter-args", "optimized"),
        ArmInfo(
            "args-token", "separate", "args", ("base", "token_reward_model"), "otter-args", "token-level"
        ),
        ArmInfo("otter-args", "otter", "args", ("otter",)),
        ArmInfo(
            "dexperts-faithful",
            "separate",
            "dexperts",
            ("base", "expert", "anti_expert"),
            "otter-dexperts",
            "faithful",
        ),
        ArmInfo(
            "dexperts-cached",
            "separate",
            "dexperts",
            ("base", "expert", "anti_expert"),
            "otter-dexperts",
            "optimized",
        ),
        ArmInfo("otter-dexperts", "otter", "dexperts", ("otter",)),
        # inference acceleration: greedy speculative decoding, output identical to base
        ArmInfo("spec-separate", "separate", "accel", ("base", "draft"), "otter-spec", "optimized"),
        ArmInfo("otter-spec", "otter", "accel", ("otter",)),
    )
}
# decode engines an arm runs under (arms/engine.py): transformers as is, or static KV cache + torch.compile
ENGINES: tuple[str, ...] = ("eager", "compiled")
TASKS: tuple[str, ...] = tuple(dict.fromkeys(info.task for info in ARMS.values() if info.task))

# views of the registry kept for readability at call sites; never edit these, edit ARMS
ARM_NAMES: tuple[str, ...] = tuple(ARMS)
ARM_ROLES: dict[str, str] = {name: info.role for name, info in ARMS.items()}
ARM_NEEDS: dict[str, tuple[str, ...]] = {name: info.needs for name, info in ARMS.items()}
OTTER_COUNTERPART: dict[str, str] = {
    name: info.counterpart for name, info in ARMS.items() if info.counterpart
}


def arm_info(name: str) -> ArmInfo:
    """The registry entry for `name`; unknown names raise ValueError listing the known ones."""
    if name not in ARMS:
        raise ValueError(f"unknown arm {name!r}: choose one of {', '.join(ARMS)}")
    return ARMS[name]


def model_roles(arms: tuple[str, ...] | list[str]) -> set[str]:
    """The models a set of arms loads: always the base, plus every separate model they need."""
    return {"base"} | {role for arm in arms for role in arm_info(arm).needs if role != "otter"}


def baseline_kind(separate_arm: str) -> str:
    """ "faithful", "optimized" or "token-level": which kind of baseline a separate arm is."""
    return arm_info(separate_arm).baseline or "optimized"
