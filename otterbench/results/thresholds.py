"""The regression gate's default thresholds and significance level (see `otterbench.results.gate`).

Kept apart from the gate so that the command line can show them in `--help` without importing pandas.
"""

from __future__ import annotations

THRESHOLD_METRICS = ("otter_tpot", "extra_time_saved", "extra_space_saved")
DEFAULT_MAX_REGRESSION_PCT = 10.0
# per-metric defaults: Otter's per-token latency (after the speed factor of the control arms) moved by up to
# the figure in docs/regression-gate-false-alarms.md between repeated runs of one commit on a shared 2-core
# machine, so its default sits above that; savings use 10 percentage points
DEFAULT_THRESHOLDS = {
    "otter_tpot": 25.0,
    "extra_time_saved": DEFAULT_MAX_REGRESSION_PCT,
    "extra_space_saved": DEFAULT_MAX_REGRESSION_PCT,
}
DEFAULT_ALPHA = 0.01
# a peak-memory change smaller than this share of the base arm's peak is within the instrument's resolution
# (allocator and RSS granularity on CPU, allocator rounding on GPU): not evidence of a regression
DEFAULT_SPACE_NOISE_PCT = 1.0
