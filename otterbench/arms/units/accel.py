"""The inference-acceleration task: greedy speculative decoding, output identical to the base's.

Both arms share the verify rule (`otterbench/arms/speculative.py`: keep the drafts the base would have
chosen, plus the base's own next token); they differ in who drafts: a separate draft model proposing
`draft_length` tokens (`spec-separate`, the way users already run a draft model: counted as "optimized"),
or Otter's signal drafting token t+2. The planner has no cost model for this task yet.
"""

from __future__ import annotations

from typing import Any

from otterbench.arms.spec import ArmSpec, Knob, ModelsByRole, TaskSpec

DRAFT_LENGTH = Knob(
    "draft_length", int, 3, "accel: draft tokens spec-separate proposes per base forward", minimum=1
)
KNOBS = (DRAFT_LENGTH,)


def _separate(models: ModelsByRole) -> Any:
    from otterbench.arms.speculative import SeparateDraftArm

    return SeparateDraftArm(models["base"], models["draft"])


def _otter(models: ModelsByRole) -> Any:
    from otterbench.arms.speculative import OtterDraftArm

    return OtterDraftArm(models["otter"])


SPECS = (
    ArmSpec(
        "spec-separate",
        "separate",
        "accel",
        ("base", "draft"),
        _separate,
        counterpart="otter-spec",
        baseline="optimized",
        decides_as="base",  # speculative decoding keeps the base's own greedy tokens
        knobs=KNOBS,
        origin=__name__,
    ),
    ArmSpec(
        "otter-spec",
        "otter",
        "accel",
        ("otter",),
        _otter,
        decides_as="base",
        knobs=KNOBS,
        origin=__name__,
    ),
)
TASKS = (TaskSpec("accel", "drafts"),)  # both drafts learn the base's continuations
