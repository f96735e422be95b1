"""run_suite: every arm of a suite on one workload, each in a freshly spawned process, results kept as they come.

The parent builds the workload once (prompts -> token ids), hands the same object to each arm's process,
and rewrites results.json + arms.csv atomically after every arm, so a crash or Ctrl-C keeps what finished.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from otterbench.arms import ARM_ROLES
from otterbench.exits import Exit
from otterbench.results.files import arms_frame, compute_savings, write_csv_atomic, write_json_atomic
from otterbench.results.stats import summarize
from otterbench.run.config import RunConfig
from otterbench.run.processes import measure_spawned
from otterbench.run.session import ArmJob, measure_arm

SCHEMA_VERSION = 1


class Reporter:
    """What the runner tells its caller as it goes (the CLI draws progress bars; Python callers may ignore)."""

    def arm_started(self, arm: str, total_steps: int) -> None: ...

    def arm_progress(self, arm: str, done: int, total: int) -> None: ...

    def arm_finished(self, arm: str, record: dict[str, Any]) -> None: ...

    def warn(self, message: str) -> None: ...


@dataclass
class RunOutcome:
    """Where the run was written, what it holds and the exit code it earns."""

    run_dir: Path
    results: dict[str, Any]
    exit_code: int
    notes: list[str] = field(default_factory=list)


def new_run_id() -> str:
    """<UTC time>-<short random id>, sortable by time."""
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def _not_run(arm: str, reason: str) -> dict[str, Any]:
    return {
        "name": arm,
        "role": ARM_ROLES[arm],
        "status": "not_run",
        "error": reason,
        "new_tokens": None,
        "token_ids_hash": None,
        "latency": None,
        "memory": None,
        "energy": None,
    }


def _energy_entry(raw: list[dict[str, Any]], total_new_tokens: int) -> dict[str, Any] | None:
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


def schema_arm(record: dict[str, Any]) -> dict[str, Any]:
    """A measured record in results.json's arm shape: latency summaries with raw samples, memory, energy."""
    if record.get("status") != "ok":
        failed = _not_run(record["name"], record.get("error") or "failed")
        failed.update(status=record.get("status", "failed"))
        if record.get("traceback"):
            failed["traceback"] = record["traceback"]
        return failed
    raw = record["raw_latency"]
    entry = {
        key: record[key]
        for key in (
            "name",
            "role",
            "status",
            "error",
            "new_tokens",
            "token_ids_hash",
            "memory",
            "calls",
            "rows_scored",
            "deterministic",
        )
    }
    entry["latency"] = {key: summarize(raw[key]) for key in ("ttft_s", "tpot_s", "total_s")}
    entry["timer"] = raw["method"]  # cuda_events or perf_counter
    entry["energy"] = _energy_entry(record.get("raw_energy", []), record["total_new_tokens"])
    return entry


def _otter_block(records: list[dict[str, Any]], config: RunConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """The insertion that ran, and its non-disruption measured in the run (from the Otter arm's process)."""
    info = next((r["otter"] for r in records if r.get("otter")), None)
    if info is None:
        otter = {
            "layout": config.layout,
            "distilled": None,
            "path": config.otter_path,
            "spec": None,
            "inserted_parameters": None,
        }
        return otter, {
            "layout": config.layout,
            "exact": None,
            "max_abs_logit_diff": None,
            "argmax_agreement": None,
            "measured": False,
        }
    nd = info["non_disruption"]
    otter = {key: info[key] for key in ("layout", "distilled", "path", "spec", "inserted_parameters")}
    return otter, {
        "layout": nd["layout"],
        "exact": nd["exact"],
        "max_abs_logit_diff": nd["max_abs_logit_diff"],
        "argmax_agreement": nd["argmax_agreement"],
        "positions": nd["positions"],
        "measured": True,
    }


def assemble_results(
    config: RunConfig, run_id: str, status: str, records: list[dict[str, Any]], prelude: dict[str, Any]
) -> dict[str, Any]:
    """The whole results.json document for the arms measured so far."""
    arms = [schema_arm(r) for r in records]
    otter, non_disruption = _otter_block(records, config)
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "created_utc": prelude["created_utc"],
        "suite": config.suite.name,
        "status": status,
        "isolation": config.isolation,
        "config": {**config.to_dict(), "schedule": prelude.get("schedule", "sequential")},
        "workload": prelude["workload"],
        "environment": prelude["environment"],
        "otter": otter,
        "non_disruption": non_disruption,
        "arms": arms,
        "savings": compute_savings(arms),
    }


def write_run_files(run_dir: Path, results: dict[str, Any]) -> None:
    """results.json and arms.csv, each replaced atomically."""
    write_json_atomic(run_dir / "results.json", results)
    write_csv_atomic(run_dir / "arms.csv", arms_frame(results))


def _measure(job: ArmJob, config: RunConfig, reporter: Reporter) -> dict[str, Any]:
    if config.isolation == "inline":
        return measure_arm(job, progress=lambda done, total: reporter.arm_progress(job.arm, done, total))
    return measure_spawned(job, reporter)


def resolve_schedule(config: RunConfig) -> str:
    """interleaved on CPU (shared cores drift), sequential on GPUs (all arms' models at once may not fit)."""
    if config.isolation == "inline":
        return "sequential"
    if config.schedule != "auto":
        return config.schedule
    from otterbench.env import resolve_device

    return "interleaved" if resolve_device(config.device).type == "cpu" else "sequential"


def _run_sequential(
    config: RunConfig,
    workload: Any,
    reporter: Reporter,
    write: Callable[[list[dict[str, Any]], list[str], str], None],
) -> tuple[list[dict[str, Any]], bool]:
    records: list[dict[str, Any]] = []
    pending = list(config.arms)
    try:
        while pending:
            arm = pending[0]
            reporter.arm_started(arm, config.warmup + config.repeats)
            records.append(_measure(config.arm_job(arm, workload), config, reporter))
            pending.pop(0)
            reporter.arm_finished(arm, records[-1])
            write(records, pending, "partial" if pending else "complete")
    except KeyboardInterrupt:
        return records, True
    return records, False


def run_suite(
    config: RunConfig,
    reporter: Reporter | None = None,
    on_prelude: Callable[[dict[str, Any]], None] | None = None,
) -> RunOutcome:
    """Run every arm of `config`, writing results as arms finish; never loses a finished arm."""
    from otterbench.run.prepare import prepare_run
    from otterbench.run.processes import run_interleaved

    reporter = reporter or Reporter()
    prelude, workload = prepare_run(config, reporter)
    schedule = resolve_schedule(config)
    prelude["schedule"] = schedule
    run_id = new_run_id()
    run_dir = config.out_dir / config.suite.name / run_id
    run_dir.mkdir(parents=True, exist_ok=False)
    if on_prelude:
        on_prelude({"run_dir": str(run_dir), **prelude})

    def write(
        records: list[dict[str, Any]], pending: list[str], status: str, reason: str = "pending"
    ) -> dict:
        results = assemble_results(
            config, run_id, status, records + [_not_run(a, reason) for a in pending], prelude
        )
        write_run_files(run_dir, results)
        return results

    write([], list(config.arms), "partial")
    if schedule == "interleaved":
        records, interrupted = run_interleaved(
            [config.arm_job(arm, workload) for arm in config.arms], reporter
        )
    else:
        records, interrupted = _run_sequential(config, workload, reporter, write)
    done = {record["name"] for record in records}
    pending = [arm for arm in config.arms if arm not in done]
    if interrupted:
        results = write(records, pending, "interrupted", "interrupted before this arm finished")
        return RunOutcome(run_dir, results, Exit.INTERRUPTED)
    results = write(records, pending, "complete")
    if config.save_outputs:
        from otterbench.results.outputs import write_outputs
        from otterbench.run.prepare import _tokenizer

        write_outputs(run_dir, records, workload.prompt_ids, _tokenizer(config))
    failed = any(arm["status"] != "ok" for arm in results["arms"])
    return RunOutcome(run_dir, results, Exit.FAILED if failed else Exit.OK)


def default_results_dir() -> Path:
    """results/ under the working directory, unless OTTERBENCH_RESULTS_DIR says otherwise."""
    return Path(os.environ.get("OTTERBENCH_RESULTS_DIR", "results"))
