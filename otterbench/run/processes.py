"""Arm processes: each arm in its own spawned process, driven by the parent through a pipe.

The worker loads its arm (an `ArmSession`), then obeys "prefill", "warmup", "repeat" and "finish"; its answer
to "finish" is its `ArmRecord`. Each measured repeat reaches the parent the moment it finishes (a
`RepeatSample`), so the parent's handle survives the worker's death (kill -9, out of memory) with the
repeats it finished: the arm becomes "failed" with the signal or exit code and keeps them, and the other
arms go on. A stopped run (Ctrl-C, SIGTERM) cuts the running repeat short with SIGUSR1 and asks for the
record at once ("finish-now": memory and repeats, no non-disruption check), so it exits within a second or two.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from typing import Any

from otterbench.backends import backend_spec
from otterbench.quiet import silence_progress_bars
from otterbench.run.compile_cache import use_compile_cache
from otterbench.run.interrupts import children_ignore_interrupts, ignore_interrupts
from otterbench.run.record import ArmRecord
from otterbench.run.session import ArmJob, ArmSession, Phase, RepeatSample, failure_record, record_of_repeats

POLL_S = 0.05
JOIN_S = 10.0  # how long a worker that was told to finish may take to exit before it is killed
STOP_S = 1.5  # how long a stopped arm may take to abandon its command and report before it is killed
FINISH, FINISH_NOW = "finish", "finish-now"
STOP_SIGNAL = signal.SIGUSR1  # parent -> worker: abandon the command running now


class _Stopped(Exception):  # noqa: N818 — raised in the worker by STOP_SIGNAL, never outside it
    """The parent stopped the command the worker was running."""


_running = False  # in the worker: a command runs now, so STOP_SIGNAL may cut it short


def _on_stop(signum: int, frame: object) -> None:
    if _running:
        raise _Stopped


def _obey(session: ArmSession, command: str) -> tuple[str, Any]:
    """Run one command ("repeat" answers with its sample); ("stopped", None) if the parent cut it short."""
    global _running
    try:
        _running = True
        result = session.measure() if command == "repeat" else getattr(session, command)()
        _running = False
    except _Stopped:
        return "stopped", None
    finally:
        _running = False
    return "done", session.keep(result) if command == "repeat" else None


def _worker(job: ArmJob, conn: Any) -> None:
    """An arm's process: build the session, then obey the parent's commands until a finish."""
    ignore_interrupts()  # the parent decides what Ctrl-C and SIGTERM mean
    silence_progress_bars()  # the parent draws this arm's progress; "phase" messages say what it does
    signal.signal(STOP_SIGNAL, _on_stop)
    use_compile_cache(job.compile_cache_dir)  # before anything compiles
    try:
        session = ArmSession(job, lambda phase: conn.send(("phase", phase)))
        conn.send(("ready", None))
        while (command := conn.recv()) not in (FINISH, FINISH_NOW):
            conn.send(_obey(session, command))
        conn.send(("result", session.finish(check=command == FINISH)))
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
        # a daemonic process may not start processes of its own: a backend that does (vLLM's tensor-parallel
        # ranks) gets a plain one; close() and the stop paths kill it either way
        backend = backend_spec(job.backend.name, job.backend_origin)
        daemon = not backend.starts_processes(job.backend.options)
        self.process = context.Process(target=_worker, args=(job, child), daemon=daemon)
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
        self.samples: list[RepeatSample] = []  # the measured repeats, each as it finished
        self.awaiting: str | None = "ready"  # the answer awaited: loading first
        self.finishing = False  # told to finish now (a stopped run)

    @property
    def pid(self) -> int | None:
        return self.process.pid

    @property
    def repeats_done(self) -> int:
        return len(self.samples)

    def _answer(self, deadline: float | None = None) -> tuple[str, Any]:
        """The worker's next message; ("dead", None) once its pipe is closed and nothing is left to read,
        ("late", None) past `deadline`."""
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
            if deadline is not None and time.monotonic() > deadline:
                return "late", None

    def _settle(self, kind: str, payload: Any) -> bool:
        """Record an answer; True while the arm is still running."""
        self.awaiting = None
        if isinstance(payload, RepeatSample):
            self.samples.append(payload)
        if kind in ("dead", "late"):
            if kind == "late":
                self.process.kill()
            self.process.join(JOIN_S)
            reason = death_reason(self.process.exitcode) if kind == "dead" else "did not answer when stopped"
            self.record = record_of_repeats(self.job.arm, f"the arm's process {reason}", self.samples)
        elif kind == "result":
            self.record = payload
        return self.record is None

    def _send(self, command: str, deadline: float | None = None) -> bool:
        try:
            self.conn.send(command)
        except OSError:
            return self._settle("dead", None)
        self.awaiting = command
        return self._settle(*self._answer(deadline))

    def wait_ready(self) -> bool:
        """Wait for the arm to load; False (and a failure record) if it failed instead."""
        return self._settle(*self._answer())

    def ask(self, command: str) -> bool:
        """Run one command in the arm's process; False (and a failure record) if it failed instead."""
        return self._send(command)

    def finish(self) -> ArmRecord:
        """The arm's record (after any answer still in flight); then the process is gone."""
        if self.record is None and self.awaiting:
            self._settle(*self._answer())
        if self.record is None:
            self._send(FINISH)
        self.close()
        return self.record

    def stop_now(self) -> None:
        """Cut the running command short (SIGUSR1) and ask for the record at once, without the non-disruption
        check; an arm still loading cannot be cut short, and is not waited for."""
        if self.record is not None or self.awaiting == "ready" or not self.process.is_alive():
            return
        if self.awaiting:
            os.kill(self.process.pid, STOP_SIGNAL)
        try:
            self.conn.send(FINISH_NOW)
        except OSError:
            return
        self.finishing = True

    def finish_now(self, reason: str, deadline: float) -> ArmRecord:
        """A stopped arm's record by `deadline`: its memory and finished repeats, else the repeats it sent
        (killed); "not_run" with `reason` if it measured none."""
        while self.finishing and self.record is None:
            kind, payload = self._answer(deadline)
            self._settle(kind, payload)  # "done" or "stopped" first (the command cut short), then "result"
        if self.record is not None and not self.record.ok and not self.samples:
            self.record = None  # nothing measured: not run, rather than failed
        if self.finishing:
            self.process.join(max(0.0, deadline - time.monotonic()))  # it exits once it has answered
        return self.stop(reason)

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
