"""Otter: parameters inserted into a frozen LLM that predict a calibration signal alongside its tokens.

Public API (others call these names): OtterSpec, insert_otter, OtterModel, save_otter, load_otter,
measure_disruption; the fused layout via OtterModel.to_fused(), save_fused and load_fused.
"""

from otterbench.otter.disruption import Disruption, measure_disruption
from otterbench.otter.fused import FusedOtterModel, PrefixRMSNorm, load_fused, save_fused
from otterbench.otter.io import load_otter, read_otter_config, save_otter
from otterbench.otter.model import OtterCache, OtterModel, insert_otter
from otterbench.otter.output import OtterOutput
from otterbench.otter.spec import BaseDims, OtterSpec, count_fused_extra_parameters, count_inserted_parameters

__all__ = [
    "BaseDims",
    "Disruption",
    "FusedOtterModel",
    "OtterCache",
    "OtterModel",
    "OtterOutput",
    "OtterSpec",
    "PrefixRMSNorm",
    "count_fused_extra_parameters",
    "count_inserted_parameters",
    "insert_otter",
    "load_fused",
    "load_otter",
    "measure_disruption",
    "read_otter_config",
    "save_fused",
    "save_otter",
]
