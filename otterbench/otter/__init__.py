"""Otter: parameters inserted into a frozen LLM that predict a calibration signal alongside its tokens.

Public API (others call these names): OtterSpec, insert_otter, OtterModel, save_otter, load_otter,
measure_disruption; the fused layout via OtterModel.to_fused(), save_fused and load_fused; the packed
(zero-free, engine-ready) layout via OtterModel.to_packed() and load_packed; either built shard by shard
from a saved base by otter.checkpoint.build_checkpoint.
"""

from __future__ import annotations

import importlib
from typing import Any

from otterbench.otter.spec import BaseDims, OtterSpec, count_fused_extra_parameters, count_inserted_parameters

# the torch-using modules load on first use of one of their names: the spec alone (the planner, the CLI's
# option checks) must not import torch
_LAZY = {
    **dict.fromkeys(("Disruption", "measure_disruption"), "otterbench.otter.disruption"),
    **dict.fromkeys(
        ("FusedOtterModel", "PrefixRMSNorm", "load_fused", "save_fused"), "otterbench.otter.fused"
    ),
    **dict.fromkeys(("load_otter", "read_otter_config", "save_otter"), "otterbench.otter.io"),
    **dict.fromkeys(("PackedOtterModel", "load_packed"), "otterbench.otter.packed"),
    **dict.fromkeys(("OtterCache", "OtterModel", "insert_otter"), "otterbench.otter.model"),
    "OtterOutput": "otterbench.otter.output",
}

__all__ = [
    "BaseDims",
    "Disruption",
    "FusedOtterModel",
    "OtterCache",
    "OtterModel",
    "OtterOutput",
    "OtterSpec",
    "PackedOtterModel",
    "PrefixRMSNorm",
    "count_fused_extra_parameters",
    "count_inserted_parameters",
    "insert_otter",
    "load_fused",
    "load_otter",
    "load_packed",
    "measure_disruption",
    "read_otter_config",
    "save_fused",
    "save_otter",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
