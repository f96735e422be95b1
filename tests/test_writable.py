"""report, export and plan --plot refuse an unwritable destination with one line and exit 2, no traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from factories import make_results, write_run
from typer.testing import CliRunner

from otterbench.cli import app
from otterbench.exits import Exit
from otterbench.paths import writable_problem

ROOT = os.geteuid() == 0  # root writes through a read-only mode bit: only a real failure can show it


def _one_error_line(args: list[str], *fragments: str) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == Exit.BAD_INPUT, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert all(fragment in lines[0] for fragment in fragments), lines[0]
    return lines[0]


@pytest.fixture
def run_dir(tmp_path) -> Path:
    return write_run(tmp_path / "runs", make_results())


@pytest.fixture
def a_file(tmp_path) -> Path:
    """A regular file: nothing can be created beneath it, for root or anyone."""
    path = tmp_path / "plain.txt"
    path.write_text("not a folder\n")
    return path


def test_writable_problem_names_the_option(tmp_path, a_file) -> None:
    assert writable_problem(tmp_path / "new" / "deeper", "--out") is None
    assert "--out=" in writable_problem(a_file / "sub", "--out")
    assert "is a folder" in writable_problem(tmp_path, "--plot", is_file=True)


@pytest.mark.skipif(ROOT, reason="root ignores a read-only mode bit")
def test_read_only_folder_is_refused(tmp_path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert "is not writable" in writable_problem(folder / "x", "--out")
    finally:
        folder.chmod(0o755)


def test_report_into_an_unwritable_folder(run_dir, a_file) -> None:
    _one_error_line(["report", str(run_dir), "--out", str(a_file / "report")], "--out=", "not writable")


def test_report_write_failure_is_one_line(run_dir, tmp_path, monkeypatch) -> None:
    import otterbench.results.report as report

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(report, "write_run_report", read_only)
    _one_error_line(["report", str(run_dir), "--out", str(tmp_path / "r")], "Permission denied", "--out")


def test_export_into_an_unwritable_folder(run_dir, a_file) -> None:
    _one_error_line(["export", str(run_dir), "--out", str(a_file / "bench.json")], "--out=", "not writable")


def test_export_write_failure_is_one_line(run_dir, tmp_path, monkeypatch) -> None:
    import otterbench.results.files as files

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files, "write_json_atomic", disk_full)
    _one_error_line(["export", str(run_dir), "--out", str(tmp_path / "b.json")], "No space left on device")


def test_plan_plot_into_an_unwritable_folder(a_file) -> None:
    args = ["plan", "--base", "llama-2-7b", "--plot", str(a_file / "savings.png")]
    _one_error_line(args, "--plot=", "not writable")
