"""The CPU/GPU switch: device and dtype parsing, environment description, `otterbench env`."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from otterbench.cli import app
from otterbench.dtypes import torch_dtype as resolve_dtype
from otterbench.env import (
    describe_environment,
    other_gpu_processes,
    probe_capabilities,
    resolve_device,
)

CPU = torch.device("cpu")
ENV_KEYS = {
    "device", "gpu_name", "driver", "cuda", "torch", "transformers", "python", "platform", "cpu",
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


def test_describe_environment_outside_a_git_checkout(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    environment = describe_environment(CPU)
    assert environment["git_commit"] is None and environment["git_dirty"] is None


def test_probe_capabilities_on_cpu_says_why_not() -> None:
    caps = probe_capabilities(CPU)
    assert not caps.nvml_available and caps.nvml_reason
    assert not caps.nvml_process_memory and caps.nvml_process_memory_reason
    assert not caps.energy_counter and caps.energy_reason
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
