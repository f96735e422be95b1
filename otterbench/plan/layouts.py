"""Otter's layouts as the planner prices them: the model each stores and whether it runs beside the base.

The one home of a layout's stored parameters (zero blocks counted where a layout stores them): the planner's
bytes, space and FLOPs of an Otter arm all come from `otter_shape`. A layout is one entry of
`PLANNED_LAYOUTS`: `split` keeps the base unchanged and runs the inserted parameters beside it; `fused` runs
the widened checkpoint, zero blocks included, instead of the base; `packed` runs an engine-ready widened
model that stores exactly the base's and the inserted parameters (no zero block), so it moves the split
layout's bytes and does its FLOPs: priced as the base plus the inserted shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from otterbench.otter.spec import BaseDims, OtterSpec
from otterbench.plan.flops import fused_shape, inserted_shape, require_checkpoint_width
from otterbench.plan.shapes import ModelShape


@dataclass(frozen=True)
class PlannedLayout:
    """How one layout runs: `beside_base` adds its shape to the base's; otherwise its shape replaces it."""

    name: str
    beside_base: bool
    shape: Callable[[Any, OtterSpec], ModelShape]  # (base transformers config, spec) -> what it stores


def _split_shape(base_config: Any, spec: OtterSpec) -> ModelShape:
    return inserted_shape(BaseDims.from_config(base_config), spec)


def _packed_shape(base_config: Any, spec: OtterSpec) -> ModelShape:
    # the split layout's bytes and FLOPs, in a widened checkpoint: its width must be one transformers saves
    dims = BaseDims.from_config(base_config)
    require_checkpoint_width(dims, spec, "packed")
    return inserted_shape(dims, spec)


PLANNED_LAYOUTS: dict[str, PlannedLayout] = {
    layout.name: layout
    for layout in (
        PlannedLayout("split", beside_base=True, shape=_split_shape),
        PlannedLayout("fused", beside_base=False, shape=fused_shape),
        PlannedLayout("packed", beside_base=True, shape=_packed_shape),
    )
}


def otter_shape(layout: str, base_config: Any, spec: OtterSpec) -> ModelShape:
    """The model `layout` stores: the inserted parameters alone (beside the base) or the whole widened one."""
    return PLANNED_LAYOUTS[layout].shape(base_config, spec)


def stored_extra_parameters(layout: str, base_config: Any, spec: OtterSpec, base: ModelShape) -> int:
    """Parameters `layout` stores beyond the base model's (zero blocks included where it stores them)."""
    shape = otter_shape(layout, base_config, spec)
    return shape.parameters if PLANNED_LAYOUTS[layout].beside_base else shape.parameters - base.parameters
