"""Faults lose nothing: Ctrl-C while arms load, SIGTERM, a killed arm process, a full disk.

The spawned runs are as small as a run gets (2 prompts x 2 tokens); each still starts real processes.
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from otterbench.cli import app
from otterbench.exits import Exit
from otterbench.results import files
from otterbench.results.files import load_run
from otterbench.run import assemble, fused_checkpoint, pipeline, schedules
from otterbench.run.events import ArmProgress, ArmStarted
from otterbench.run.options import RunOptions
from otterbench.run.pipeline import NOT_REACHED, run_suite

TINY = {"arms": "base,otter-args", "device": "cpu", "num_prompts": 2, "max_new_tokens": 2, "warmup": 0}
TINY |= {"yardstick_engine": "static"}  # the subprocess runs are out of conftest's reach: the cheap stand-in


def _group_is_empty(pgid: int, wait_s: float = 10.0) -> bool:
    """No process left in the group (multiprocessing's resource tracker exits just after the parent)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    print(subprocess.run(["ps", "-o", "pid,args", "-g", str(pgid)], capture_output=True, text=True).stdout)
    return False


def test_ctrl_c_while_arms_load_exits_130_with_valid_files_and_no_process_left(tmp_path) -> None:
    args = [sys.executable, "-m", "otterbench", "run", "--out", str(tmp_path), "--schedule", "interleaved"]
    for key, value in {**TINY, "repeats": 1}.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    # its own process group, like a job in a terminal: Ctrl-C reaches the parent and every arm process
    run = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("safety/*/results.json")) and time.monotonic() < deadline:
        time.sleep(0.05)  # the run folder exists just before the first arm process starts
    time.sleep(0.5)  # the arm processes are starting: importing torch, loading models
    os.killpg(run.pid, signal.SIGINT)
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == Exit.INTERRUPTED, stderr.decode()
    assert b"Traceback" not in stderr, stderr.decode()
    assert _group_is_empty(run.pid)  # no arm process outlived the run
    results = load_run(next(tmp_path.glob("safety/*")))
    assert results["status"] == "interrupted"
    assert {arm["status"] for arm in results["arms"]} == {"not_run"}


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, Exit.INTERRUPTED), (signal.SIGTERM, Exit.TERMINATED)]
)
def test_a_stop_while_the_run_prepares_writes_the_interrupted_file(
    tmp_path, monkeypatch, signum, code
) -> None:
    """Ctrl-C or SIGTERM while the fused checkpoint is built (before any arm): the same file, all arms not run."""

    def stopped_while_building(*args):
        os.kill(os.getpid(), signum)  # the run's handler raises here, as it would mid-build
        raise AssertionError("the signal did not stop the run")

    monkeypatch.setattr(fused_checkpoint, "prepare_fused_checkpoint", stopped_while_building)
    monkeypatch.setattr(schedules, "ArmProcess", stopped_while_building)  # no arm may start
    outcome = run_suite(RunOptions(**TINY, repeats=1, out=tmp_path).to_config(tmp_path))
    results = load_run(outcome.run_dir)
    assert outcome.exit_code == code and results["status"] == "interrupted"
    assert [(arm["status"], arm["error"]) for arm in results["arms"]] == [("not_run", NOT_REACHED)] * 2


class _SignalInDestructor:
    """Sends SIGINT from inside `__del__`: the handler's raise lands there and Python drops it ("ignored")."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnraisableExceptionWarning"
)  # the dropped raise, on purpose
def test_a_ctrl_c_whose_raise_python_dropped_still_stops_the_run(tmp_path, monkeypatch) -> None:
    """Seen under load: the Ctrl-C landed in a library's `__del__`, its exception was discarded and the run
    finished with exit 0. The schedule's next step raises the stop the handler recorded."""
    real_measure = schedules.measure_arm

    def measure_after_a_lost_signal(*args, **kwargs):
        _SignalInDestructor()  # collected at once: the signal is handled, and its raise lost, in __del__
        return real_measure(*args, **kwargs)

    monkeypatch.setattr(schedules, "measure_arm", measure_after_a_lost_signal)
    options = RunOptions(**TINY, repeats=2, isolation="inline", out=tmp_path)
    reported: list = []  # what Python would print as "Exception ignored in ...": the dropped raise is not
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    outcome = run_suite(options.to_config(tmp_path))
    assert not reported, [str(item.exc_value) for item in reported]
    results = load_run(outcome.run_dir)
    assert outcome.exit_code == Exit.INTERRUPTED and results["status"] == "interrupted"
    assert results["arms"][0]["status"] != "ok"  # stopped at its first progress step, not measured to the end


def test_sigterm_keeps_finished_repeats_and_exits_143(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(schedules, "STOP_S", 60.0)  # a busy machine may take longer to answer: not timed here
    options = RunOptions(**TINY, repeats=50, schedule="interleaved", out=tmp_path)

    def terminate_after_two_rounds(event) -> None:
        if isinstance(event, ArmProgress) and event.arm == "otter-args" and event.done == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    outcome = run_suite(options.to_config(tmp_path), terminate_after_two_rounds)
    results = load_run(outcome.run_dir)
    assert outcome.exit_code == Exit.TERMINATED and results["status"] == "interrupted"
    assert [arm["status"] for arm in results["arms"]] == ["ok", "ok"], [a["error"] for a in results["arms"]]
    assert [arm["latency"]["total_s"]["n"] for arm in results["arms"]] == [2, 2]
    # stopped runs exit at once: the Otter arm reports its memory and repeats, and skips the check
    assert results["non_disruption"]["measured"] is False and results["otter"]["spec"] is not None
    assert all(arm["memory"]["peak_bytes"] for arm in results["arms"])
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("schedule", ["interleaved", "sequential"])
def test_a_killed_arm_process_keeps_its_finished_repeats_and_the_run_is_partial(tmp_path, schedule) -> None:
    options = RunOptions(**TINY, repeats=3, schedule=schedule, out=tmp_path)
    pids: dict[str, int] = {}

    def kill_base_after_one_repeat(event) -> None:
        if isinstance(event, ArmStarted):
            pids[event.arm] = event.pid
        if isinstance(event, ArmProgress) and event.arm == "base" and event.done == 1:
            os.kill(pids["base"], signal.SIGKILL)  # as the OS does when memory runs out

    outcome = run_suite(options.to_config(tmp_path), kill_base_after_one_repeat)
    results = load_run(outcome.run_dir)
    arms = {arm["name"]: arm for arm in results["arms"]}
    assert outcome.exit_code == Exit.FAILED and results["status"] == "partial"
    assert arms["base"]["status"] == "failed" and "killed by signal SIGKILL" in arms["base"]["error"]
    assert arms["base"]["latency"]["total_s"]["n"] == 1  # the repeat it finished reached the parent
    assert arms["otter-args"]["status"] == "ok" and arms["otter-args"]["latency"]["total_s"]["n"] == 3
    assert multiprocessing.active_children() == []


def test_disk_full_at_the_final_write_keeps_the_previous_file_and_prints_the_summary(
    tmp_path, monkeypatch
) -> None:
    real_fsync, calls = os.fsync, []

    def fsync_then_fill(fd: int) -> None:
        calls.append(fd)
        if len(calls) > 4:  # the start and the arm's own write (json + csv each) succeed, the final does not
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", fsync_then_fill)
    monkeypatch.setattr(pipeline, "fallback_roots", lambda: [])  # the disk is full everywhere
    args = ["run", "--out", str(tmp_path), "--isolation", "inline", "--repeats", "1"]
    for key, value in {**TINY, "arms": "base"}.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == Exit.FAILED, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0], result.output
    assert "non-disruption" in result.output  # the summary is still printed
    run_dir = next(tmp_path.glob("safety/*"))
    previous = load_run(run_dir)  # intact: the write after the arm finished
    assert previous["status"] == "partial" and previous["arms"][0]["status"] == "ok"
    assert not list(run_dir.glob(".*tmp"))
    assert '"status": "complete"' in result.stdout  # the only copy of the records: on stdout


def test_results_that_cannot_be_written_go_to_a_fallback_folder_said_in_one_line(
    tmp_path, monkeypatch
) -> None:
    out, fallback = tmp_path / "out", tmp_path / "fallback"
    real_write = assemble.write_json_atomic

    def full_under_out(path, data) -> None:
        if out in Path(path).parents:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(path, data)

    monkeypatch.setattr(assemble, "write_json_atomic", full_under_out)
    monkeypatch.setattr(pipeline, "fallback_roots", lambda: [fallback])
    args = ["run", "--out", str(out), "--isolation", "inline", "--repeats", "1"]
    for key, value in {**TINY, "arms": "base"}.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == Exit.FAILED, result.output  # not where it was asked: a CI job must notice
    said = [line for line in result.output.splitlines() if "No space left on device" in line]
    assert len(said) == 1 and said[0].startswith("error: "), result.output
    run_dir = next(fallback.glob("safety/*"))
    assert str(run_dir) in said[0] and f"results: {run_dir}/results.json" in result.stdout.replace("\n", "")
    results = load_run(run_dir)
    assert results["status"] == "complete" and results["arms"][0]["latency"]["total_s"]["n"] == 1
