"""run_suite: a run in three stages, each handing one typed object to the next.

resolve (RunConfig -> ResolvedRun: device, dtype, schedule, workload, jobs; otterbench/run/resolved.py)
-> execute (a schedule runs the jobs -> one ArmRecord per arm; otterbench/run/schedules.py)
-> assemble (records -> the results.json document -> files; otterbench/run/assemble.py).

results.json and arms.csv are rewritten atomically after every arm, so a crash, Ctrl-C or SIGTERM keeps what
finished. Progress comes back as typed events (otterbench/run/events.py) to an optional sink.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from otterbench.exits import Exit
from otterbench.models.sources import tokenizer_for
from otterbench.results.outputs import write_outputs
from otterbench.run.assemble import assemble_results, write_run_files
from otterbench.run.compile_cache import compile_cache_root, with_compile_caches
from otterbench.run.config import RunConfig, RunInputError
from otterbench.run.events import (
    ArmFinished,
    ArmProgress,
    ArmStarted,
    EventSink,
    Notice,
    RunEvent,
    RunStarted,
    ignore,
)
from otterbench.run.interrupts import Interrupted, InterruptGuard
from otterbench.run.record import ArmRecord
from otterbench.run.resolve import ResolvedRun, prepare_run, resolve_run
from otterbench.run.schedules import run_interleaved, run_sequential

PENDING = "pending"
NOT_REACHED = "interrupted before this arm started"


@dataclass
class RunOutcome:
    """Where the run was written, what it holds, the exit code it earns and why the files may be stale."""

    run_dir: Path
    results: dict[str, Any]
    exit_code: int
    write_error: str | None = None  # the run's files are not (all) where asked: the line saying where
    saved: bool = True  # False: no folder took the files; `results` is the only copy


def new_run_id() -> str:
    """<UTC time>-<short random id>, sortable by time."""
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def fallback_roots() -> list[Path]:
    """Where a run's files go when its --out cannot take them (full disk, read-only): temp, then home."""
    return [Path(tempfile.gettempdir()) / "otterbench-results", Path.home() / ".otterbench-results"]


class RunFiles:
    """The run's folder and its files, rewritten from the records so far (arms not recorded: not run).

    A write that fails moves the run to a fallback folder (`fallback_roots`) and says so once; the records
    stay in memory whatever happens, so the summary is printed even if no folder takes them.
    """

    def __init__(self, resolved: ResolvedRun, out_dir: Path) -> None:
        self.resolved, self.run_id = resolved, new_run_id()
        self.run_dir = out_dir / resolved.config.suite.name / self.run_id
        self.moved: str | None = None  # the line saying where the run went, once it has moved
        self.lost = False  # no folder took the files: the records live only in memory
        try:
            self.run_dir.mkdir(parents=True, exist_ok=False)
        except OSError as error:
            self._move(f"could not create {self.run_dir}: {error.strerror or error}", None)

    def results(self, records: list[ArmRecord], status: str, reason: str = PENDING) -> dict[str, Any]:
        by_name = {record.name: record for record in records}
        arms = [by_name.get(arm) or ArmRecord.not_run(arm, reason) for arm in self.resolved.config.arms]
        return assemble_results(self.resolved, self.run_id, status, arms)

    def write(self, records: list[ArmRecord], status: str, reason: str = PENDING) -> tuple[dict, str | None]:
        """The document, and one line if it could not be written where the run lives (or anywhere)."""
        results = self.results(records, status, reason)
        error = write_run_files(self.run_dir, results)
        if error is None or self.moved is not None:
            return results, error
        return results, self._move(error, results)

    def _move(self, error: str, results: dict[str, Any] | None) -> str:
        """Write into the first fallback folder that takes the files; the line saying where (or that none did)."""
        for root in fallback_roots():
            run_dir = root / self.resolved.config.suite.name / self.run_id
            try:
                run_dir.mkdir(parents=True, exist_ok=True)
            except OSError:
                continue
            if results is None or write_run_files(run_dir, results) is None:
                self.run_dir, self.moved = run_dir, f"{error}; the run is written to {run_dir} instead"
                return self.moved
        self.moved = f"{error}; no fallback folder could take it either: results.json follows on stdout"
        self.lost = True
        return self.moved


def execute(resolved: ResolvedRun, emit: EventSink) -> tuple[list[ArmRecord], Interrupted | None]:
    """Run the resolved's jobs on its schedule: the arms' records, and the signal that stopped them, if any."""
    jobs = list(resolved.jobs)
    if resolved.schedule == "interleaved":
        return run_interleaved(jobs, emit)
    return run_sequential(jobs, emit, inline=resolved.config.process.isolation == "inline")


def _measure(resolved: ResolvedRun, files: RunFiles, emit: EventSink, guard: InterruptGuard) -> Any:
    finished: list[ArmRecord] = []

    def on_event(event: RunEvent) -> None:
        if isinstance(
            event, ArmStarted | ArmProgress
        ):  # the schedule's own steps, before any stop is handled
            guard.raise_if_stopped()  # a signal whose raise was lost (it landed in a __del__) stops here
        emit(event)
        if isinstance(event, ArmFinished):  # keep every finished arm on disk at once
            finished.append(event.record)
            with guard.deferred():
                _, error = files.write(finished, "partial")
            if error and error != files.moved:  # a move is said once, at the end
                emit(Notice(error))

    try:
        with guard.deferred():
            files.write([], "partial")
        emit(RunStarted(files.run_dir, resolved))
        try:
            # the fused checkpoint, the bandwidth: a stop while they run is recorded
            files.resolved = prepare_run(resolved, emit)
        except RunInputError:  # a checkpoint that cannot be built: bad input, and nothing was measured
            shutil.rmtree(files.run_dir, ignore_errors=True)
            raise
        # torch.compile's caches for the arms' processes, while they run (or kept, in a folder given)
        with compile_cache_root(resolved.config.process.compile_cache) as root:
            return execute(with_compile_caches(files.resolved, root), on_event)
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
                return RunOutcome(
                    files.run_dir, results, stop.exit_code, error or files.moved, not files.lost
                )
            # "complete" only when every arm measured: a failed arm leaves a partial run (the gate says so)
            status = "complete" if all(record.ok for record in records) else "partial"
            results, error = files.write(records, status)
        if config.save_outputs and not files.lost:
            write_outputs(
                files.run_dir,
                records,
                resolved.workload.prompt_ids,
                tokenizer_for(resolved.catalogue["base"].source),
            )
    problem = error or files.moved  # not where asked: a CI job must not read stale files as this run
    failed = problem is not None or any(arm["status"] != "ok" for arm in results["arms"])
    exit_code = Exit.FAILED if failed else Exit.OK
    return RunOutcome(files.run_dir, results, exit_code, problem, not files.lost)
