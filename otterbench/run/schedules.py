"""Schedules: in which order the arms' repeats run. Each takes the plan's jobs and returns their records.

- sequential: one arm after another, each in its own process (or inline, for debugging).
- interleaved: every arm in its own live process, measured round-robin (A B C D, A B C D, ...). A shared
  machine has slow spells lasting seconds; round-robin, each spell lands on every arm alike, so the savings
  (ratios of arms) do not swing with it. Each process still holds only its own arm's models.

On Ctrl-C or SIGTERM (`Interrupted`, returned, not raised) the running repeat is cut short and an arm keeps the
measured repeats it finished; one that finished none is stopped and recorded as not run. A second signal while
winding down stops every arm still running.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from otterbench.run.events import ArmFinished, ArmPhase, ArmProgress, ArmStarted, EventSink
from otterbench.run.interrupts import Interrupted
from otterbench.run.processes import STOP_S, ArmProcess
from otterbench.run.record import ArmRecord
from otterbench.run.session import ArmJob, measure_arm

STOPPED = "interrupted before its first measured repeat finished"

# the arms' records in job order (those that started), and the signal that cut the schedule short, if one did
Outcome = tuple[list[ArmRecord], Interrupted | None]


def _command(index: int, warmup: int) -> str:
    return "warmup" if index < warmup else "repeat"


def _wind_down(arms: list[ArmProcess]) -> list[ArmRecord]:
    """Records of interrupted arms at once: running repeats cut short, finished ones kept; a second signal
    stops every arm still running."""
    records, deadline = [], time.monotonic() + STOP_S  # every arm answers at once, within one deadline
    try:
        for arm in arms:
            arm.stop_now()
        for arm in arms:
            records.append(arm.finish_now(STOPPED, deadline))
    except Interrupted:
        for arm in arms[len(records) :]:
            records.append(arm.stop("interrupted twice while finishing; its repeats were discarded"))
    return records


def _drive(arm: ArmProcess, emit: EventSink) -> None:
    """Run one arm's process through prefill, warm-up and measured repeats."""
    job, total = arm.job, arm.job.warmup + arm.job.repeats
    if arm.wait_ready() and arm.ask("prefill"):
        for index in range(total):
            if not arm.ask(_command(index, job.warmup)):
                return
            emit(ArmProgress(job.arm, index + 1, total))


def _phases(job: ArmJob, emit: EventSink) -> Callable[[str], None]:
    """The callback that turns the phases `job`'s arm enters into ArmPhase events."""
    return lambda phase: emit(ArmPhase(job.arm, phase))


def _measure_inline(job: ArmJob, emit: EventSink) -> ArmRecord:
    total = job.warmup + job.repeats
    emit(ArmStarted(job.arm, total))
    return measure_arm(job, lambda done, n: emit(ArmProgress(job.arm, done, n)), _phases(job, emit))


def _measure_spawned(job: ArmJob, emit: EventSink, live: list[ArmProcess]) -> ArmRecord:
    live.append(ArmProcess(job, _phases(job, emit)))
    emit(ArmStarted(job.arm, job.warmup + job.repeats, live[-1].pid))
    _drive(live[-1], emit)
    record = live[-1].finish()
    live.pop()
    return record


def run_sequential(jobs: list[ArmJob], emit: EventSink, inline: bool = False) -> Outcome:
    """Measure the jobs one after another (each in a fresh process unless `inline`)."""
    records: list[ArmRecord] = []
    live: list[ArmProcess] = []  # the arm process running now, while it runs
    try:
        for job in jobs:
            records.append(_measure_inline(job, emit) if inline else _measure_spawned(job, emit, live))
            emit(ArmFinished(records[-1]))
    except Interrupted as stop:
        return records + _wind_down(live), stop
    finally:
        for arm in live:
            arm.stop("the run stopped")
    return records, None


def run_interleaved(jobs: list[ArmJob], emit: EventSink) -> Outcome:
    """Measure every job round-robin, each arm in its own live process."""
    arms: list[ArmProcess] = []
    rounds = jobs[0].warmup + jobs[0].repeats if jobs else 0
    try:
        for job in jobs:
            arms.append(ArmProcess(job, _phases(job, emit)))
            emit(ArmStarted(job.arm, rounds, arms[-1].pid))
            if arms[-1].wait_ready():
                arms[-1].ask("prefill")
        for index in range(rounds):
            command = _command(index, jobs[0].warmup)
            for arm in arms:
                if arm.record is None and arm.ask(command):
                    emit(ArmProgress(arm.job.arm, index + 1, rounds))
        records = [arm.finish() for arm in arms]
    except Interrupted as stop:
        return _wind_down(arms), stop
    finally:
        for arm in arms:
            arm.stop("the run stopped")  # a no-op for arms already finished
    for record in records:
        emit(ArmFinished(record))
    return records, None
