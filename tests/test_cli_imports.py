"""The command line starts without torch, transformers, pandas or matplotlib: help and option errors are fast.

Checked in a fresh interpreter (this test process has long imported them all); no timing, only which modules
a command pulled in.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "pandas", "matplotlib")

_PROBE = """
import json, sys
from otterbench.cli import app
args = json.loads(sys.argv[1])
code = None
if args is not None:
    try:
        app(args)
    except SystemExit as exit:
        code = exit.code
print(json.dumps({"code": code, "heavy": [m for m in json.loads(sys.argv[2]) if m in sys.modules]}))
"""


def _probe(args: list[str] | None) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_cli_loads_no_heavy_library() -> None:
    assert _probe(None)["heavy"] == []


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["-h"],
        ["run", "--help"],
        ["run", "-h"],
        ["sweep", "--help"],
        ["report", "--help"],
        ["plan", "--help"],
    ],
)
def test_help_loads_no_heavy_library(args) -> None:
    assert _probe(args) == {"code": 0, "heavy": []}


@pytest.mark.parametrize("command", [["run"], ["sweep", "--vary", "k=1,2"]])
def test_a_bad_suite_is_refused_without_heavy_libraries(command) -> None:
    assert _probe([*command, "--suite", "nosuch"]) == {"code": 2, "heavy": []}


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--arms", ","],
        ["run", "--num-prompts", "1000000"],
        ["run", "--out", "/proc/otterbench-x"],
        ["run", "--base", "/nonexistent/model", "--device", "gpu"],
        ["sweep", "--vary", "nosuch=1"],
        ["models", "save", "/etc/hostname"],
    ],
)
def test_input_checked_without_models_is_refused_without_heavy_libraries(args) -> None:
    assert _probe(args) == {"code": 2, "heavy": []}


def test_version_names_the_package_version_without_heavy_libraries() -> None:
    from otterbench import __version__

    assert _probe(["--version"]) == {"code": 0, "heavy": []}
    done = subprocess.run(
        [sys.executable, "-m", "otterbench", "--version"], capture_output=True, text=True, check=True
    )
    assert done.stdout.startswith(f"otterbench {__version__}")
