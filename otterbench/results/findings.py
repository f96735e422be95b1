"""What the regression gate decides with and what it returns: settings, one finding per figure, the verdict."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from otterbench.results.power import DEFAULT_ALPHA

THRESHOLD_METRICS = ("tpot", "total", "extra_time_saved", "extra_space_saved")
# chosen with the power study in docs/regression-gate.md (--preset ci, 10 runs of one commit)
DEFAULT_THRESHOLDS = {"tpot": 5.0, "total": 5.0, "extra_time_saved": 5.0, "extra_space_saved": 10.0}
# a peak-memory change smaller than this share of the base arm's peak is within the instrument's resolution
# (allocator and RSS granularity on CPU, allocator rounding on GPU): not evidence of a regression
DEFAULT_SPACE_NOISE_PCT = 1.0
# the fused layout's logits deviate from the base model's by float32 rounding (< 1e-4 in tests/test_otter_fused.py)
DEFAULT_DEVIATION_TOLERANCE = 1e-3


@dataclass(frozen=True)
class GateSettings:
    """How strict the gate is: thresholds per metric, significance, noise floors, normalisation."""

    thresholds: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    alpha: float = DEFAULT_ALPHA
    space_noise_pct: float = DEFAULT_SPACE_NOISE_PCT
    deviation_tolerance: float = DEFAULT_DEVIATION_TOLERANCE
    # divide the run's latencies by the control arms' speed factor: for shared machines only (it cancels
    # any slowdown the arms share, e.g. the decoding loop or a torch upgrade)
    normalize: bool = False
    latency_tests: int = 1  # tests in one check, set by the gate: the strictest Holm step is alpha / this


@dataclass(frozen=True)
class Finding:
    """One monitored figure of one arm or pair: both values, the change, the evidence and the verdict."""

    metric: str  # arm_status | decisions | exactness | deviation | power | tpot | total | extra_*_saved
    subject: str  # an arm name, "separate->otter", "non_disruption" or "repeats"
    baseline: float | str | None
    current: float | str | None
    change: float | None  # percent for tpot/total, percentage points for savings
    threshold: float | None
    evidence: str
    regressed: bool
    warning: bool = False  # worth a look, does not fail the gate
    detectable: float | None = None  # smallest change this finding could have flagged, same unit as change


@dataclass
class CheckResult:
    """The gate's verdict: every finding, and the workload differences that were allowed."""

    findings: list[Finding]
    mismatches: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no finding regressed."""
        return not any(finding.regressed for finding in self.findings)

    @property
    def regressions(self) -> list[Finding]:
        """The findings that fail the gate."""
        return [finding for finding in self.findings if finding.regressed]

    @property
    def warnings(self) -> list[Finding]:
        """The findings worth a look that do not fail the gate."""
        return [finding for finding in self.findings if finding.warning]

    def to_dict(self) -> dict:
        """A JSON-ready form: passed, findings, mismatches."""
        return {
            "passed": self.passed,
            "findings": [asdict(finding) for finding in self.findings],
            "mismatches": self.mismatches,
        }
