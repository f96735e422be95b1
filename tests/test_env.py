"""The CPU/GPU switch: device and dtype parsing, environment description, `otterbench env`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import otterbench
from otterbench.cli import app
from otterbench.dtypes import torch_dtype as resolve_dtype
from otterbench.env import (
    describe_environment,
    open_rapl,
    other_gpu_processes,
    probe_capabilities,
    resolve_device,
)
from otterbench.provenance import SourceState, source_state

CPU = torch.device("cpu")
ENV_KEYS = {
    "otterbench", "device", "gpu_name", "driver", "cuda", "torch", "transformers", "python", "platform", "cpu",
    "cpu_count", "torch_threads", "git_commit", "git_dirty", "hostname",
}  # fmt: skip


def test_resolve_device_accepts_the_documented_forms() -> None:
    assert resolve_device("cpu") == CPU
    assert resolve_device(" CPU ") == CPU
    expected_auto = torch.device("cuda:0") if torch.cuda.is_available() else CPU
    assert resolve_device("auto") == expected_auto


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA exists here")
@pytest.mark.parametrize("spec", ["cuda", "cuda:0"])
def test_resolve_device_refuses_cuda_without_cuda(spec: str) -> None:
    with pytest.raises(ValueError, match="CUDA is not available") as err:
        resolve_device(spec)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("spec", ["gpu:0", "cuda:x", "cuda:", "cpu:0", "", "cuda:-1"])
def test_resolve_device_refuses_malformed_specs(spec: str) -> None:
    with pytest.raises(ValueError, match="use auto, cpu, cuda or cuda:N") as err:
        resolve_device(spec)
    assert repr(spec) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_resolve_device_refuses_a_missing_index() -> None:
    with pytest.raises(ValueError, match="CUDA device"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_resolve_dtype_names_and_aliases() -> None:
    assert resolve_dtype("float32") is resolve_dtype("fp32") is torch.float32
    assert resolve_dtype("float16") is resolve_dtype("fp16") is torch.float16
    assert resolve_dtype("bfloat16") is resolve_dtype("bf16") is torch.bfloat16
    assert resolve_dtype("bf16", "cpu") is torch.bfloat16


@pytest.mark.parametrize("name", ["float64", "int8", "half-ish", ""])
def test_resolve_dtype_refuses_unknown_names(name: str) -> None:
    with pytest.raises(ValueError, match="use one of float32, bfloat16, float16") as err:
        resolve_dtype(name)
    assert "\n" not in str(err.value)


def test_resolve_dtype_refuses_float16_on_cpu() -> None:
    with pytest.raises(ValueError, match="use float32 or bfloat16"):
        resolve_dtype("fp16", "cpu")


def test_describe_environment_has_every_key_and_is_json() -> None:
    environment = describe_environment(CPU)
    assert set(environment) == ENV_KEYS
    assert json.loads(json.dumps(environment)) == environment
    assert environment["torch"] == torch.__version__
    assert environment["device"] == "cpu" and environment["gpu_name"] is None
    assert environment["git_dirty"] is None or isinstance(environment["git_dirty"], bool)


def git(folder: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(folder), *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def new_repo(folder: Path, files: dict[str, str]) -> str:
    """A git repository in `folder` with `files` committed; returns the commit."""
    folder.mkdir(parents=True, exist_ok=True)
    git(folder, "init", "-q")
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", "start")
    return git(folder, "rev-parse", "HEAD")


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def test_the_environment_records_the_package_version() -> None:
    environment = describe_environment(CPU)
    assert environment["otterbench"] == otterbench.__version__ == source_state().version


@needs_git
def test_a_run_inside_another_checkout_does_not_record_its_commit(tmp_path, monkeypatch) -> None:
    other = new_repo(tmp_path / "project", {"README": "someone else's project\n"})
    (tmp_path / "project" / "README").write_text("changed\n")  # that checkout is dirty; ours may not be
    monkeypatch.chdir(tmp_path / "project")
    environment = describe_environment(CPU)
    assert environment["git_commit"] != other
    assert (environment["git_commit"], environment["git_dirty"]) == (
        source_state().git_commit,
        source_state().git_dirty,
    )


@needs_git
def test_the_commit_is_the_one_of_the_checkout_tracking_the_package(tmp_path, monkeypatch) -> None:
    commit = new_repo(tmp_path / "repo", {"pkg/__init__.py": "", "pkg/module.py": "x = 1\n", "notes": ""})
    other = new_repo(tmp_path / "other", {"pkg/__init__.py": "# another project's\n"})
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "other" / ".git"))  # ignored: the package's folder decides
    monkeypatch.chdir(tmp_path / "other")
    package = tmp_path / "repo" / "pkg"
    assert commit != other
    assert source_state(package) == SourceState(otterbench.__version__, commit, False)
    (tmp_path / "repo" / "notes").write_text("outside the package\n")
    assert source_state(package).git_dirty is False  # only the package's own files count
    (package / "module.py").write_text("x = 2\n")
    assert source_state(package).git_dirty is True
    (package / "module.py").write_text("x = 1\n")
    (package / "new.py").write_text("")  # an untracked module changes what runs, too
    assert source_state(package).git_dirty is True


@needs_git
def test_a_package_not_tracked_by_the_checkout_around_it_records_no_commit(tmp_path) -> None:
    # e.g. installed into a virtual environment inside someone's repository
    new_repo(tmp_path / "repo", {".gitignore": "venv/\n"})
    package = tmp_path / "repo" / "venv" / "site-packages" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    state = source_state(package)
    assert (state.git_commit, state.git_dirty) == (None, None)


def test_describe_environment_outside_a_git_checkout(tmp_path, monkeypatch) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    state = source_state(package)
    assert state.git_commit is None and state.git_dirty is None and state.version == otterbench.__version__


def test_probe_capabilities_on_cpu_says_why_not() -> None:
    caps = probe_capabilities(CPU)
    assert not caps.nvml_available and caps.nvml_reason
    assert not caps.nvml_process_memory and caps.nvml_process_memory_reason
    # energy on a CPU: the RAPL package counters where this machine has them and this user may read them
    assert caps.energy_counter == (open_rapl()[0] is not None) and (caps.energy_counter or caps.energy_reason)
    assert not caps.torch_memory_stats
    assert caps.rss_method in {"VmHWM", "getrusage"}
    assert caps.rss_phase_reset or caps.rss_phase_reset_reason
    assert json.loads(json.dumps(caps.to_dict())) == caps.to_dict()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA exists here")
def test_other_gpu_processes_unknown_without_a_gpu() -> None:
    assert other_gpu_processes(torch.device("cuda:0")) is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA exists here")
def test_env_command_says_nvml_unavailable_and_exits_0() -> None:
    result = CliRunner().invoke(app, ["env"])
    assert result.exit_code == 0, result.output
    assert "NVML" in result.output
    assert "no CUDA device here" in result.output
    assert "unavailable" in result.output


def test_env_command_json_is_one_object() -> None:
    result = CliRunner().invoke(app, ["env", "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report) == {"capabilities", "environment", "other_gpu_processes"}
    assert set(report["environment"]) == ENV_KEYS
    assert report["capabilities"]["device"] == "cpu"


@pytest.mark.parametrize("spec", ["gpu:0", "cuda:x"])
def test_env_command_bad_device_exits_2_with_one_line(spec: str) -> None:
    result = CliRunner().invoke(app, ["env", "--device", spec])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and spec in result.stderr
