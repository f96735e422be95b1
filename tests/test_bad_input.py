"""Bad input is one `error:` line and exit 2 before any model loads; none is silently ignored or contradicted.

In-process through the CLI (fast); the loaders and the arm-process spawner fail the test if they are called.
tests/test_cli_imports.py checks that the torch-free ones import no heavy library.
"""

from __future__ import annotations

import pytest
from no_loading import SMALL, LoadedAModel, forbid_loading
from typer.testing import CliRunner

from otterbench import paths
from otterbench.cli import app
from otterbench.exits import Exit


@pytest.fixture(autouse=True)
def no_loading(monkeypatch):
    """Any model load or arm process fails the test."""
    forbid_loading(monkeypatch)


def _one_error(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert not isinstance(result.exception, LoadedAModel), result.output
    assert result.exit_code == Exit.BAD_INPUT, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


RUN = ["run", "--suite", "safety", "--out", "{tmp}/out"]
# name -> (arguments, with {tmp} for the test's folder; a fragment of the one error line)
CASES: dict[str, tuple[list[str], str]] = {
    "out-in-proc": (
        ["run", "--out", "/proc/otterbench-x", *SMALL],
        "--out='/proc/otterbench-x' is not writable",
    ),
    "out-a-file": (["run", "--out", "{tmp}/plain.txt", *SMALL], "is a file: pass a folder path"),
    "models-save-into-a-file": (["models", "save", "{tmp}/plain.txt"], "is a file: pass a folder path"),
    "arms-comma": ([*RUN, "--arms", ",", *SMALL], "--arms=',' names no arm"),
    "num-prompts-beyond-file": (
        [*RUN, "--num-prompts", "1000000", "--arms", "base"],
        "--num-prompts=1000000 is more than the 44 prompts",
    ),
    "batch-size-beyond-prompts": (
        [*RUN, *SMALL, "--arms", "base", "--batch-size", "100000000000"],
        "--batch-size=100000000000 is more than the 2 prompts",
    ),
    "otter-and-ratio": (
        [*RUN, *SMALL, "--otter", "{tmp}/otter", "--otter-ratio", "0.25"],
        "contradicts --otter",
    ),
    "device-map-on-cpu": ([*RUN, *SMALL, "--device", "cpu", "--device-map", "auto"], "the run is on the CPU"),
    "device-map-on-tiny": ([*RUN, *SMALL, "--device", "auto", "--device-map", "auto"], "the tiny profile"),
    "device-typo": ([*RUN, *SMALL, "--device", "gpu"], "--device='gpu' is not a device"),
    "base-missing": ([*RUN, *SMALL, "--base", "{tmp}/nosuch"], "no such directory"),
    "base-without-config": ([*RUN, *SMALL, "--base", "{tmp}/empty"], "no config.json there"),
    "prompts-not-jsonl": ([*RUN, *SMALL, "--prompts", "{tmp}/plain.txt"], "not valid JSON"),
    "vary-unknown": (["sweep", "--out", "{tmp}/out", "--vary", "nosuch=1", *SMALL], "--vary 'nosuch=1'"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_and_exit_2_before_any_model_loads(tmp_path, name) -> None:
    (tmp_path / "plain.txt").write_text("not a folder\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "otter").mkdir()
    (tmp_path / "otter" / "otter_config.json").write_text("{}\n")  # a saved insertion, as far as it is read
    template, fragment = CASES[name]
    line = _one_error([arg.replace("{tmp}", str(tmp_path)) for arg in template])
    assert fragment in line, line


def test_models_save_into_an_unwritable_folder(tmp_path, monkeypatch) -> None:
    """A read-only mount refuses only when something is written: the probe writes (root passes mode bits)."""

    def read_only_file_system(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(paths.tempfile, "mkstemp", read_only_file_system)
    line = _one_error(["models", "save", str(tmp_path / "models")])
    assert "is not writable" in line and not (tmp_path / "models").exists(), line


def test_a_run_with_otter_but_the_default_ratio_is_not_refused_for_the_ratio(tmp_path) -> None:
    line = _one_error(["run", "--out", str(tmp_path / "o"), *SMALL, "--otter", str(tmp_path)])
    assert "otter_config.json is missing" in line and "contradicts" not in line, line
