"""run_suite: a run in three stages, each handing one typed object to the next.

resolve (RunConfig -> ResolvedRun: device, dtype, schedule, workload, jobs; otterbench/run/resolved.py)
-> execute (a schedule runs the jobs -> one ArmRecord per arm; otterbench/run/schedules.py)
-> assemble (records -> the results.json document -> files; otterbench/run/assemble.py).

results.json and arms.csv are rewritten atomically after every arm, so a crash, Ctrl-C or SIGTERM keeps what
finished. Progress comes back as typed events (otterbench/run/events.py) to an optional sink.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from otterbench.exits import Exit
from otterbench.models.sources import tokenizer_for
from otterbench.results.outputs import write_outputs
from otterbench.run.assemble import assemble_results, write_run_files
from otterbench.run.config import RunConfig
from otterbench.run.events import ArmFinished, EventSink, Notice, RunEvent, RunStarted, ignore
from otterbench.run.interrupts import Interrupted, InterruptGuard
from otterbench.run.record import ArmRecord
from otterbench.run.resolve import ResolvedRun, resolve_run
from otterbench.run.schedules import run_interleaved, run_sequential

PENDING = "pending"
NOT_REACHED = "interrupted before this arm started"


@dataclass
class RunOutcome:
    """Where the run was written, what it holds, the exit code it earns and why the files may be stale."""

    run_dir: Path
    results: dict[str, Any]
    exit_code: int
    write_error: str | None = None  # the final write failed: `results` is newer than the files


def new_run_id() -> str:
    """<UTC time>-<short random id>, sortable by time."""
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


class RunFiles:
    """The run's folder and its files, rewritten from the records so far (arms not recorded: not run)."""

    def __init__(self, resolved: ResolvedRun, out_dir: Path) -> None:
        self.resolved, self.run_id = resolved, new_run_id()
        self.run_dir = out_dir / resolved.config.suite.name / self.run_id
        self.run_dir.mkdir(parents=True, exist_ok=False)

    def results(self, records: list[ArmRecord], status: str, reason: str = PENDING) -> dict[str, Any]:
        by_name = {record.name: record for record in records}
        arms = [by_name.get(arm) or ArmRecord.not_run(arm, reason) for arm in self.resolved.config.arms]
        return assemble_results(self.resolved, self.run_id, status, arms)

    def write(self, records: list[ArmRecord], status: str, reason: str = PENDING) -> tuple[dict, str | None]:
        results = self.results(records, status, reason)
        return results, write_run_files(self.run_dir, results)


def execute(resolved: ResolvedRun, emit: EventSink) -> tuple[list[ArmRecord], Interrupted | None]:
    """Run the resolved's jobs on its schedule: the arms' records, and the signal that stopped them, if any."""
    jobs = list(resolved.jobs)
    if resolved.schedule == "interleaved":
        return run_interleaved(jobs, emit)
    return run_sequential(jobs, emit, inline=resolved.config.process.isolation == "inline")


def _measure(resolved: ResolvedRun, files: RunFiles, emit: EventSink, guard: InterruptGuard) -> Any:
    finished: list[ArmRecord] = []

    def on_event(event: RunEvent) -> None:
        emit(event)
        if isinstance(event, ArmFinished):  # keep every finished arm on disk at once
            finished.append(event.record)
            with guard.deferred():
                _, error = files.write(finished, "partial")
            if error:
                emit(Notice(error))

    try:
        with guard.deferred():
            _, error = files.write([], "partial")
        emit(RunStarted(files.run_dir, resolved))
        return execute(resolved, on_event)
    except Interrupted as stop:  # before any arm started
        return finished, stop


def run_suite(config: RunConfig, on_event: EventSink | None = None) -> RunOutcome:
    """Run every arm of `config` (resolve -> execute -> assemble); never loses a finished arm."""
    emit = on_event or ignore
    guard = InterruptGuard()
    with guard.installed():
        resolved = resolve_run(config, emit)
        files = RunFiles(resolved, config.out_dir)
        records, stop = _measure(resolved, files, emit, guard)
        with guard.deferred(reraise=False):  # the last write happens whatever arrives now
            if stop is not None:
                for record in records:
                    emit(ArmFinished(record))
                results, error = files.write(records, "interrupted", NOT_REACHED)
                return RunOutcome(files.run_dir, results, stop.exit_code, error)
            # "complete" only when every arm measured: a failed arm leaves a partial run (the gate says so)
            status = "complete" if all(record.ok for record in records) else "partial"
            results, error = files.write(records, status)
        if config.save_outputs:
            write_outputs(
                files.run_dir,
                records,
                resolved.workload.prompt_ids,
                tokenizer_for(resolved.catalogue["base"].source),
            )
    failed = error is not None or any(arm["status"] != "ok" for arm in results["arms"])
    return RunOutcome(files.run_dir, results, Exit.FAILED if failed else Exit.OK, error)
