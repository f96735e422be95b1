"""The regression gate's default thresholds, significance level and noise floors (see `results/gate.py`).

Kept apart from the gate so that the command line can show them in `--help` without importing pandas or scipy.
"""

from __future__ import annotations

THRESHOLD_METRICS = ("tpot", "total", "extra_time_saved", "extra_space_saved")
# chosen with the power study in docs/regression-gate.md (--preset ci, repeated runs of one commit)
DEFAULT_THRESHOLDS = {"tpot": 5.0, "total": 5.0, "extra_time_saved": 5.0, "extra_space_saved": 10.0}
DEFAULT_ALPHA = 0.01  # the chance that one check of an unchanged commit fails on noise (family-wise)
# a peak-memory change smaller than this share of the base arm's peak is within the instrument's resolution
# (allocator and RSS granularity on CPU, allocator rounding on GPU): not evidence of a regression
DEFAULT_SPACE_NOISE_PCT = 1.0
# the fused layout's logits deviate from the base model's by float32 rounding (< 1e-4 in tests/test_otter_fused.py)
DEFAULT_DEVIATION_TOLERANCE = 1e-3
