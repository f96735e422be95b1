"""What the regression gate decides with and what it returns: settings, one finding per figure, the verdict.

Three verdicts: FAIL when a finding regressed; otherwise INCONCLUSIVE when a finding could not be decided
(its smallest detectable change exceeds its limit, it moved beyond its limit without significance, it was not
measured in one of the runs, or a run is partial or interrupted); otherwise PASS. Missing data is never a
regression. PASS therefore always means "could have seen it, did not".
When a run is incomplete, only findings that do not rest on sample counts (an arm that crashed, changed
tokens, lost exactness, a deviation) can FAIL: a latency or saving that regressed in the repeats a cut run
measured is shown as regressed, but the verdict is INCONCLUSIVE (re-run it to the end).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import Enum

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


# the figures decided from measured repeats (a cut run cannot fail on them), and the incomplete-run finding
SAMPLED_METRICS = ("tpot", "total", "extra_time_saved", "extra_space_saved")
INCOMPLETE_RUN = "run_status"


class Verdict(str, Enum):
    """The gate's answer; each has its own exit code (`otterbench.exits.Exit`)."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


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
    inconclusive: bool = False  # the data cannot decide this figure at its limit (see the module docstring)


@dataclass
class CheckResult:
    """The gate's verdict: every finding, and the workload differences that were allowed."""

    findings: list[Finding]
    mismatches: list[str] = field(default_factory=list)

    @property
    def incomplete(self) -> bool:
        """Whether either run is partial, interrupted or short of the repeats it asked for."""
        return any(finding.metric == INCOMPLETE_RUN for finding in self.findings)

    @property
    def decisive(self) -> list[Finding]:
        """The regressions that fail the gate: all of them, or only the non-statistical ones of a cut run."""
        if not self.incomplete:
            return self.regressions
        return [finding for finding in self.regressions if finding.metric not in SAMPLED_METRICS]

    @property
    def verdict(self) -> Verdict:
        """FAIL on a decisive regression, else INCONCLUSIVE if any figure is undecided or a regression of
        a cut run stands alone, else PASS."""
        if self.decisive:
            return Verdict.FAIL
        return Verdict.INCONCLUSIVE if self.undecided or self.regressions else Verdict.PASS

    @property
    def passed(self) -> bool:
        """True only for PASS: nothing regressed and every figure could have shown a change at its limit."""
        return self.verdict is Verdict.PASS

    @property
    def regressions(self) -> list[Finding]:
        """The findings that fail the gate."""
        return [finding for finding in self.findings if finding.regressed]

    @property
    def undecided(self) -> list[Finding]:
        """The findings the data could not decide (they make the verdict INCONCLUSIVE unless one regressed)."""
        return [finding for finding in self.findings if finding.inconclusive]

    @property
    def warnings(self) -> list[Finding]:
        """The findings worth a look that do not fail the gate."""
        return [finding for finding in self.findings if finding.warning]

    def to_dict(self) -> dict:
        """A JSON-ready form: verdict, passed, findings, mismatches."""
        return {
            "verdict": self.verdict.value,
            "passed": self.passed,
            "findings": [_finite(asdict(finding)) for finding in self.findings],
            "mismatches": self.mismatches,
        }


def _finite(record: dict) -> dict:
    """The record with every non-finite number as None: JSON has no infinity (e.g. nothing detectable)."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}
