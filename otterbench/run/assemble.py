"""Assemble: the resolved plus the arms' records -> the results.json document -> files (schema-checked first).

Writing never loses what is in memory: a write that fails (disk full, folder gone) leaves the previous
files intact and comes back as one line, so the caller can still print the run's summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from otterbench.results.accel import add_accel_metrics
from otterbench.results.files import (
    SCHEMA_VERSION,
    arms_frame,
    compute_savings,
    validate_results,
    write_csv_atomic,
    write_json_atomic,
)
from otterbench.run.efficiency import add_efficiency
from otterbench.run.generated_check import generated_block
from otterbench.run.nondisruption import non_disruption_block, not_measured
from otterbench.run.record import ArmRecord
from otterbench.run.resolve import ResolvedRun

_NO_OTTER_KEYS = ("distilled", "spec", "inserted_parameters")


def _unchecked(records: list[ArmRecord]) -> str:
    """Why no Otter arm reported a non-disruption check."""
    otter = [record for record in records if record.role == "otter"]
    if not otter:
        return "no Otter arm ran"
    if not any(record.ok for record in otter):
        return "no Otter arm finished"
    return "the Otter arm reported no check"


def _otter_block(records: list[ArmRecord], resolved: ResolvedRun) -> tuple[dict[str, Any], dict[str, Any]]:
    """The insertion that ran, and its non-disruption measured in the run (from the Otter arm's process)."""
    info = next((r.otter for r in records if r.otter), None)
    if info is None:
        layout, path = resolved.config.insertion.layout, resolved.config.insertion.path
        otter = {"layout": layout, "path": path, **dict.fromkeys(_NO_OTTER_KEYS)}
        return otter, not_measured(layout, _unchecked(records))
    otter = {key: info[key] for key in ("layout", "path", *_NO_OTTER_KEYS)}
    otter["fused_checkpoint"] = info.get("fused_checkpoint")
    otter["checkpoint_build_s"] = info.get("checkpoint_build_s")
    if info.get("non_disruption") is None:  # the run was stopped: the check was skipped to exit at once
        return otter, not_measured(info["layout"], "the run was stopped before the check")
    base = next((r for r in records if r.role == "base" and r.ok), None)
    base_hash = base.token_ids_hash if base else None
    report, dtype = info["non_disruption"], resolved.config.dtype
    if "greedy" not in report:  # step-level: the Otter process compared logits itself
        return otter, non_disruption_block(report, base_hash, dtype)
    passes = base.check_passes if base else None  # generate-level: judged against the base arm's passes
    # ... with the base on Otter's norm path, when that arm ran, as a second harmless change
    integration = next((r for r in records if r.role == "integration" and r.ok and r.check_passes), None)
    norm_path = integration.check_passes["norm_path"] if integration else None
    block = generated_block(report, passes, base_hash, info["layout"], dtype, norm_path)
    return otter, block or not_measured(
        info["layout"], "no base arm finished to judge the Otter arm's tokens by"
    )


def run_config_block(resolved: ResolvedRun) -> dict[str, Any]:
    """results.json `config`: the resolved configuration, with the prompt count the workload really has."""
    # a --prompts file or a suite without num_prompts uses every prompt: record how many that was
    return {
        **resolved.config.to_dict(),
        "num_prompts": resolved.workload.num_prompts,
        "schedule": resolved.schedule,
    }


def assemble_results(
    resolved: ResolvedRun, run_id: str, status: str, records: list[ArmRecord]
) -> dict[str, Any]:
    """The whole results.json document for the arms recorded so far."""
    arms = [record.to_json() for record in records]
    savings = compute_savings(arms)
    add_accel_metrics(arms, savings)
    otter, non_disruption = _otter_block(records, resolved)
    results = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "created_utc": resolved.created_utc,
        "suite": resolved.config.suite.name,
        "status": status,
        "isolation": resolved.config.process.isolation,
        "config": run_config_block(resolved),
        "workload": resolved.workload_info,
        "environment": resolved.environment,
        "otter": otter,
        "non_disruption": non_disruption,
        "arms": arms,
        "savings": savings,
    }
    add_efficiency(results, resolved.prediction)
    return results


def write_run_files(run_dir: Path, results: dict[str, Any]) -> str | None:
    """Validate, then replace results.json and arms.csv atomically; the error in one line if writing failed."""
    validate_results(results, source=str(run_dir / "results.json"))  # a run never writes what it cannot read
    try:
        write_json_atomic(run_dir / "results.json", results)
        write_csv_atomic(run_dir / "arms.csv", arms_frame(results))
    except OSError as error:
        return f"could not write {run_dir}: {error.strerror or error} (the previous results.json is intact)"
    return None
