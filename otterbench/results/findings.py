"""What the regression gate decides with and what it returns: settings, one finding per figure, the verdict."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from otterbench.results.thresholds import (
    DEFAULT_ALPHA,
    DEFAULT_DEVIATION_TOLERANCE,
    DEFAULT_SPACE_NOISE_PCT,
    DEFAULT_THRESHOLDS,
)


@dataclass(frozen=True)
class GateSettings:
    """How strict the gate is: thresholds per metric, significance, noise floors, normalisation."""

    thresholds: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    alpha: float = DEFAULT_ALPHA
    space_noise_pct: float = DEFAULT_SPACE_NOISE_PCT
    deviation_tolerance: float = DEFAULT_DEVIATION_TOLERANCE
    # divide each repeat by the machine's speed at its moment (gate.local_speeds): for shared machines only
    # (it cancels any slowdown the arms share, e.g. the decoding loop or a torch upgrade)
    normalize: bool = False
    latency_tests: int = 1  # tests in one check, set by the gate: the strictest Holm step is alpha / this


@dataclass(frozen=True)
class Finding:
    """One monitored figure of one arm or pair: both values, the change, the evidence and the verdict."""

    metric: str  # arm_status | decisions | non_disruption | exactness | deviation | power | tpot | total | extra_*_saved
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
