"""Interleaved schedule: every arm in its own live process, measured round-robin (A B C D, A B C D, ...).

A shared machine has slow spells lasting seconds; measured one arm after another, whichever arm runs during
one looks slower and the savings (ratios of arms) swing from run to run. Round-robin, each round runs every
arm once, so a slow spell lands on all arms alike. Each process still holds only its own arm's models, so
memory stays isolated per arm; only one process computes at a time. Loading is sequential too. The sequential schedule runs each arm through the same process handle alone.
"""

from __future__ import annotations

import multiprocessing
import signal
from typing import Any

from otterbench.arms.registry import ARM_ROLES
from otterbench.run.session import ArmJob, ArmSession, failure_record

COMMANDS = ("prefill", "warmup", "repeat")


def _worker(job: ArmJob, conn: Any) -> None:
    """An arm's process: build the session, then obey the parent's commands until "finish"."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what an interrupt means
    try:
        session = ArmSession(job)
        conn.send(("ready", None))
        while (command := conn.recv()) != "finish":
            getattr(session, command)()
            conn.send(("done", None))
        conn.send(("result", {"name": job.arm, "role": ARM_ROLES[job.arm], **session.finish()}))
    except Exception as error:  # noqa: BLE001 — an arm's failure is data for the parent
        conn.send(("result", failure_record(job.arm, error)))


class _ArmProcess:
    """The parent's handle on one arm's process: send a command, wait for its answer or its death."""

    def __init__(self, context: Any, job: ArmJob) -> None:
        self.job = job
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker, args=(job, child), daemon=True)
        self.process.start()
        child.close()
        self.record: dict[str, Any] | None = None  # set once the arm has finished or failed

    def _answer(self) -> tuple[str, Any]:
        while not self.conn.poll(0.05):
            if not self.process.is_alive():
                error = RuntimeError(f"the arm's process exited with code {self.process.exitcode}")
                return "result", failure_record(self.job.arm, error)
        return self.conn.recv()

    def wait_ready(self) -> bool:
        kind, payload = self._answer()
        if kind == "result":
            self.record = payload
        return self.record is None

    def ask(self, command: str) -> bool:
        """Run one command in the arm's process; False (and a failure record) if it failed instead."""
        self.conn.send(command)
        kind, payload = self._answer()
        if kind == "result":
            self.record = payload
        return self.record is None

    def finish(self) -> dict[str, Any]:
        if self.record is None:
            self.conn.send("finish")
            kind, payload = self._answer()
            while kind != "result":  # an answer to a command still in flight when Ctrl-C came
                kind, payload = self._answer()
            self.record = payload
        self.process.join(timeout=30)
        return self.record


def _command(index: int, warmup: int) -> str:
    return "warmup" if index < warmup else "repeat"


def measure_spawned(job: ArmJob, reporter: Any) -> dict[str, Any]:
    """One arm start to finish in a fresh process (the sequential schedule); Ctrl-C discards it."""
    arm = _ArmProcess(multiprocessing.get_context("spawn"), job)
    total = job.warmup + job.repeats
    try:
        if arm.wait_ready() and arm.ask("prefill"):
            for index in range(total):
                if not arm.ask(_command(index, job.warmup)):
                    break
                reporter.arm_progress(job.arm, index + 1, total)
    except BaseException:
        arm.process.terminate()
        arm.process.join()
        raise
    return arm.finish()


def run_interleaved(jobs: list[ArmJob], reporter: Any) -> tuple[list[dict[str, Any]], bool]:
    """Measure every job round-robin; returns the arms' records and whether Ctrl-C cut the rounds short.

    On Ctrl-C the arms keep the repeats they finished (their sample counts say how many).
    """
    context = multiprocessing.get_context("spawn")
    arms: list[_ArmProcess] = []
    interrupted = False
    try:
        for job in jobs:
            reporter.arm_started(job.arm, job.warmup + job.repeats)
            arm = _ArmProcess(context, job)
            arms.append(arm)
            if arm.wait_ready():
                arm.ask("prefill")
        rounds = jobs[0].warmup + jobs[0].repeats if jobs else 0
        for index in range(rounds):
            command = _command(index, jobs[0].warmup)
            for arm in arms:
                if arm.record is None and arm.ask(command):
                    reporter.arm_progress(arm.job.arm, index + 1, rounds)
    except KeyboardInterrupt:
        interrupted = True
    records = []
    for arm in arms:
        record = arm.finish()
        reporter.arm_finished(arm.job.arm, record)
        records.append(record)
    return records, interrupted
