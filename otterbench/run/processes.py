"""Arm processes: each arm in its own spawned process, driven by the parent through a pipe.

The worker loads its arm (an `ArmSession`), then obeys "prefill", "warmup", "repeat" and "finish"; its answer
to "finish" is its `ArmRecord`. The parent's handle survives the worker's death (kill -9, out of memory): the
arm becomes "failed" with the signal or exit code, and the other arms go on.
"""

from __future__ import annotations

import multiprocessing
import signal
from typing import Any

from otterbench.quiet import silence_progress_bars
from otterbench.run.interrupts import children_ignore_interrupts, ignore_interrupts
from otterbench.run.record import ArmRecord
from otterbench.run.session import ArmJob, ArmSession, Phase, failure_record

POLL_S = 0.05
JOIN_S = 10.0  # how long a worker that was told to finish may take to exit before it is killed


def _worker(job: ArmJob, conn: Any) -> None:
    """An arm's process: build the session, then obey the parent's commands until "finish"."""
    ignore_interrupts()  # the parent decides what Ctrl-C and SIGTERM mean
    silence_progress_bars()  # the parent draws this arm's progress; "phase" messages say what it does
    try:
        session = ArmSession(job, lambda phase: conn.send(("phase", phase)))
        conn.send(("ready", None))
        while (command := conn.recv()) != "finish":
            getattr(session, command)()
            conn.send(("done", None))
        conn.send(("result", session.finish()))
    except (EOFError, BrokenPipeError, ConnectionResetError):
        return  # the parent is gone: there is no one to report to
    except Exception as error:  # noqa: BLE001 — an arm's failure is data for the parent
        try:
            conn.send(("result", failure_record(job.arm, error)))
        except OSError:
            return


def death_reason(exitcode: int | None) -> str:
    """`was killed by signal SIGKILL (...)` or `exited with code 1`."""
    if exitcode is None:
        return "did not answer"
    if exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = " (the OS kills with SIGKILL when memory runs out)" if -exitcode == signal.SIGKILL else ""
        return f"was killed by signal {name}{hint}"
    return f"exited with code {exitcode}"


class ArmProcess:
    """The parent's handle on one arm's process: send a command, wait for its answer or its death."""

    def __init__(self, job: ArmJob, on_phase: Phase | None = None) -> None:
        self.job = job
        self.on_phase = on_phase  # told each phase the worker enters (loading models, compiling, ...)
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker, args=(job, child), daemon=True)
        try:
            with children_ignore_interrupts():
                self.process.start()
        except BaseException:  # a Ctrl-C held back during the start arrives here: leave no process behind
            if self.process.pid is not None:
                self.process.kill()
                self.process.join()
            raise
        finally:
            child.close()
        self.record: ArmRecord | None = None  # set once the arm has finished, failed or been stopped
        self.repeats_done = 0
        self.in_flight = True  # loading: "ready" is the answer awaited

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def _answer(self) -> tuple[str, Any]:
        """The worker's next message; ("dead", None) once its pipe is closed and nothing is left to read."""
        while True:
            if self.conn.poll(POLL_S):
                try:
                    kind, payload = self.conn.recv()
                except (EOFError, OSError):  # poll() is true at end-of-file too
                    return "dead", None
                if kind != "phase":
                    return kind, payload
                if self.on_phase:
                    self.on_phase(payload)
                continue
            if not self.process.is_alive() and not self.conn.poll(0):
                return "dead", None

    def _settle(self, kind: str, payload: Any) -> bool:
        """Record a final answer; True while the arm is still running."""
        self.in_flight = False
        if kind == "dead":
            self.process.join(JOIN_S)
            self.record = ArmRecord.failed(
                self.job.arm, f"the arm's process {death_reason(self.process.exitcode)}"
            )
        elif kind == "result":
            self.record = payload
        return self.record is None

    def wait_ready(self) -> bool:
        """Wait for the arm to load; False (and a failure record) if it failed instead."""
        return self._settle(*self._answer())

    def ask(self, command: str) -> bool:
        """Run one command in the arm's process; False (and a failure record) if it failed instead."""
        try:
            self.conn.send(command)
        except OSError:
            return self._settle("dead", None)
        self.in_flight = True
        alive = self._settle(*self._answer())
        if alive and command == "repeat":
            self.repeats_done += 1
        return alive

    def finish(self) -> ArmRecord:
        """The arm's record (after any answer still in flight); then the process is gone."""
        if self.record is None and self.in_flight:
            self._settle(*self._answer())
        if self.record is None:
            self.ask("finish")
        self.close()
        return self.record

    def stop(self, reason: str) -> ArmRecord:
        """Kill the process; an arm without a record becomes "not_run" with `reason`."""
        self.close(wait=False)
        if self.record is None:
            self.record = ArmRecord.not_run(self.job.arm, reason)
        return self.record

    def close(self, wait: bool = True) -> None:
        """Let the process exit (or kill it); never leaves it behind."""
        if wait:
            self.process.join(JOIN_S)
        if self.process.is_alive():
            self.process.kill()  # workers ignore SIGTERM, so terminate() would not do
        self.process.join()
        self.conn.close()
