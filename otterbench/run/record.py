"""ArmRecord: what one arm's measurement is, in the one shape it keeps from its process to results.json.

An arm's process builds it (status "ok" with latency summaries and raw samples, memory, energy), the schedule
hands it on unchanged, and `to_json` writes it as results.json's arm entry. A failed or unrun arm is the same
dataclass with its reason in `error`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

STATUSES = ("ok", "failed", "not_run")


def token_ids_hash(token_ids: list[list[int]]) -> str:
    """sha256 of the generated ids (prompt order), so equal decisions are checkable across arms and runs."""
    return hashlib.sha256(json.dumps(token_ids, separators=(",", ":")).encode()).hexdigest()


LATENCY_METRICS = ("ttft_s", "tpot_s", "total_s")


@dataclass
class ArmRecord:
    """One arm's result; `otter` (the insertion that ran and its non-disruption) feeds the run's otter block."""

    name: str
    status: str  # ok | failed | not_run
    error: str | None = None
    new_tokens: int | None = None  # per prompt
    token_ids_hash: str | None = None
    latency: dict[str, dict[str, Any]] | None = None  # metric -> summary with raw samples
    timer: str | None = None  # cuda_events or perf_counter
    memory: dict[str, Any] | None = None
    energy: dict[str, Any] | None = None
    calls: dict[str, int] = field(default_factory=dict)
    rows_scored: int | None = None
    deterministic: bool | None = None  # every measured repeat chose the same tokens
    traceback: str | None = None
    otter: dict[str, Any] | None = None
    engine: str | None = None  # the engine that ran: eager or compiled (backends/step.py)
    engine_note: str | None = None  # why an arm asked to compile ran eager, if it did
    compile_s: float | None = None  # compile + warm-up time, outside the measurement
    speculation: dict[str, Any] | None = None  # speculative arms' draft counters (results/accel.py)
    token_ids: list[list[int]] | None = None  # with --save-outputs only: for outputs.jsonl, not results.json
    # under a generate-level backend: the base's or Otter's passes for the parent's non-disruption check
    # (run/generated_check.py), not results.json
    check_passes: dict[str, Any] | None = None

    @property
    def role(self) -> str:
        from otterbench.arms.registry import arm_role  # the arms package imports torch: not at CLI start

        return arm_role(self.name)

    @property
    def decides_as(self) -> str | None:
        from otterbench.arms.registry import arm_decides_as

        return arm_decides_as(self.name)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def failed(cls, name: str, error: str, traceback: str | None = None) -> ArmRecord:
        """An arm that raised or whose process died; `error` is one line."""
        return cls(name=name, status="failed", error=error, traceback=traceback)

    @classmethod
    def not_run(cls, name: str, reason: str) -> ArmRecord:
        """An arm that measured nothing (pending, or interrupted before its first measured repeat)."""
        return cls(name=name, status="not_run", error=reason)

    def to_json(self) -> dict[str, Any]:
        """results.json's arm entry (schema `$defs/arm`)."""
        entry: dict[str, Any] = {
            "name": self.name,
            "role": self.role,
            "status": self.status,
            "error": self.error,
            "new_tokens": self.new_tokens,
            "token_ids_hash": self.token_ids_hash,
            "latency": self.latency,
            "memory": self.memory,
            "energy": self.energy,
        }
        if self.ok:
            entry |= {"calls": self.calls, "rows_scored": self.rows_scored}
            entry |= {"deterministic": self.deterministic, "timer": self.timer}
            entry |= {"engine": self.engine, "engine_note": self.engine_note, "compile_s": self.compile_s}
            if self.speculation is not None:
                entry["speculation"] = self.speculation
            if self.decides_as is not None:
                entry["decides_as"] = self.decides_as
        if self.traceback:
            entry["traceback"] = self.traceback
        return entry


def latency_summaries(raw: dict[str, list[float]]) -> dict[str, dict[str, Any]]:
    """Each latency metric's summary (median, p90, p99, spread, n) with its raw samples."""
    from otterbench.results.stats import summarize

    return {metric: summarize(raw[metric]) for metric in LATENCY_METRICS}


def energy_entry(raw: list[dict[str, Any]], total_new_tokens: int) -> dict[str, Any] | None:
    """Energy over the measured repeats: a summary in joules and J per new token, or why there is none."""
    from otterbench.results.stats import summarize

    if not raw:
        return None
    joules = [r["energy_j"] for r in raw if r.get("energy_j") is not None]
    supported = bool(joules) and all(r.get("supported") for r in raw)
    summary = summarize(joules, unit="J") if supported else None
    return {
        "energy_j": summary,
        "j_per_token": summary["median"] / total_new_tokens if summary else None,
        "supported": supported,
        "note": raw[0].get("note", ""),
    }
