"""otterbench plan: paper-scale costs from configs on the meta device, checked against closed forms."""

from __future__ import annotations

import json
import resource
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
from typer.testing import CliRunner

from otterbench.arms.registry import ARMS, arm_names
from otterbench.cli import app
from otterbench.models.build import make_config
from otterbench.otter.spec import BaseDims, OtterSpec, count_fused_extra_parameters
from otterbench.plan.costs import plan_costs, sweep_ratios
from otterbench.plan.inputs import PlanInputs
from otterbench.plan.shapes import (
    SHIPPED_CONFIGS,
    PlanError,
    config_from_dict,
    instantiate_meta,
    model_shape,
    read_config,
)
from otterbench.saving import saved_pct

runner = CliRunner()


def _save(config, folder: Path) -> Path:
    config.save_pretrained(folder)
    return folder / "config.json"


def _write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_llama_2_7b_parameter_count_matches_the_published_size():
    assert abs(model_shape("llama-2-7b", "causal-lm").parameters / 6.74e9 - 1) < 0.005


def test_llama_3_8b_parameter_count_matches_the_published_size():
    assert abs(model_shape("llama-3-8b", "causal-lm").parameters / 8.03e9 - 1) < 0.005


@pytest.mark.parametrize(
    ("family", "sizes"),
    [
        ("llama", {}),
        ("llama", {"tie_word_embeddings": True}),
        ("qwen2", {}),
        ("mistral", {"num_kv_heads": 4}),
    ],
)
def test_tiny_weights_bytes_equal_the_real_model_exactly(tmp_path, family, sizes):
    config = make_config(family, **sizes)
    path = _save(config, tmp_path)
    with torch.random.fork_rng(devices=[]):
        real = AutoModelForCausalLM.from_config(config)  # float32, real memory
    real_bytes = sum(p.numel() * p.element_size() for p in real.parameters())
    base = plan_costs(PlanInputs(base=str(path), dtype="float32")).arm("base")
    assert base.weights_bytes == real_bytes
    assert base.weights_bytes_by_dtype["bfloat16"] * 2 == real_bytes


def test_tiny_reward_model_parameters_equal_the_real_classifier(tmp_path):
    config = make_config("llama", num_labels=1)
    rm_path = _save(config, tmp_path)
    real = AutoModelForSequenceClassification.from_config(config)
    assert model_shape(str(rm_path), "reward").parameters == sum(p.numel() for p in real.parameters())


def test_meta_instantiation_allocates_no_memory():
    config = read_config("llama-3-70b")
    rss_before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model = instantiate_meta(config_from_dict(config), "causal-lm")
    rss_after_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    params = list(model.parameters())
    assert all(p.device.type == "meta" for p in params)
    assert sum(p.numel() for p in params) > 7e10  # 282 GB in float32, were it real
    assert rss_after_kib - rss_before_kib < 1 << 20  # < 1 GiB


# Llama-2-7B at ratio 1/4 (dx=1024, hx=gx=8, mx=2752, hd=128, d+dx=5120, V=32000, 32 layers), per layer:
# norms 2*1024 + q 8*128*5120 + k,v 2*8*128*5120 + o 1024*40*128 + gate,up 2*2752*5120 + down 1024*13760
# = 63,244,288; once: extra embedding 32000*1024 + final norm 1024 + signal head 1024*S (S = 32000 or 1).
# Qwen2-7B's figures are the closed form's (tests/test_otter_params.py checks it against built models).
INSERTED_AT_A_QUARTER = {
    ("llama-2-7b", "vocab"): 32 * 63_244_288 + 32_768_000 + 1024 + 32_768_000,
    ("llama-2-7b", "scalar"): 32 * 63_244_288 + 32_768_000 + 1024 + 1024,
    ("qwen2-7b", "vocab"): 2_311_734_656,
    ("qwen2-7b", "scalar"): 2_175_486_208,
}


@pytest.mark.parametrize("name", ["llama-2-7b", "qwen2-7b"])
@pytest.mark.parametrize("signal", ["vocab", "scalar"])
def test_otter_arm_adds_exactly_the_closed_form(name, signal):
    result = plan_costs(PlanInputs(base=name, signal=signal, ratio=0.25))
    dims = BaseDims.from_config(_config(name))
    spec = OtterSpec.from_ratio(_config(name), 0.25, signal=signal)
    assert result.spec == spec
    assert result.inserted_parameters == INSERTED_AT_A_QUARTER[name, signal]
    assert result.arm("otter-args").parameters - result.arm("base").parameters == result.inserted_parameters
    assert result.fused_extra_parameters == count_fused_extra_parameters(dims, spec, tied_embeddings=False)


def test_explicit_extra_sizes_override_the_ratio():
    result = plan_costs(PlanInputs(base="llama-3-8b", extra_hidden=256, extra_kv_heads=2, extra_ffn=1024))
    assert (result.spec.extra_hidden_size, result.spec.extra_kv_heads) == (256, 2)
    assert result.spec.extra_intermediate_size == 1024


def test_kv_bytes_per_token_follow_the_closed_forms():
    k = 10
    result = plan_costs(
        PlanInputs(base="llama-3-8b", models={"reward_model": "llama-2-7b"}, k=k, dtype="bfloat16")
    )
    base_kv = 2 * 32 * 8 * 128 * 2
    rm_kv = 2 * 32 * 32 * 128 * 2
    otter_kv = 2 * 32 * result.spec.extra_kv_heads * 128 * 2
    assert result.arm("base").kv_bytes_per_token == base_kv
    assert result.arm("args-faithful").kv_bytes_per_token == base_kv + k * rm_kv
    assert result.arm("args-optimized").kv_bytes_per_token == base_kv + rm_kv
    assert result.arm("args-optimized").kv_transient_bytes == k * rm_kv
    assert result.arm("otter-args").kv_bytes_per_token == base_kv + otter_kv
    dexperts = plan_costs(PlanInputs(base="llama-3-8b", task="dexperts"))
    assert dexperts.arm("dexperts-cached").kv_bytes_per_token == 3 * base_kv
    assert dexperts.arm("dexperts-faithful").kv_bytes_per_token == 0


def test_decode_flops_follow_the_stated_formula():
    context = 2048
    result = plan_costs(PlanInputs(base="llama-2-7b", context=context))
    shape = model_shape("llama-2-7b", "causal-lm")
    assert result.arm("base").flops_per_token == 2 * shape.linear_parameters + 4 * 32 * 32 * 128 * context
    assert shape.linear_parameters == shape.parameters - 32000 * 4096 - (2 * 32 + 1) * 4096


def test_savings_are_recomputed_from_the_arms():
    result = plan_costs(PlanInputs(base="llama-2-7b", batch_size=8, context=512))
    base, otter = result.arm("base"), result.arm("otter-args")
    for saving in result.savings:
        separate = result.arm(saving.separate_arm)
        assert saving.space_pct == saved_pct(base.space_bytes, separate.space_bytes, otter.space_bytes)
        assert saving.time_bytes_pct == saved_pct(
            base.bytes_per_step, separate.bytes_per_step, otter.bytes_per_step
        )
        manual = 100 * (
            1
            - (otter.flops_per_token - base.flops_per_token)
            / (separate.flops_per_token - base.flops_per_token)
        )
        assert saving.time_flops_pct == pytest.approx(manual, rel=1e-12)


def test_larger_ratio_saves_less():
    results = sweep_ratios(PlanInputs(base="llama-2-7b"), [1 / 16, 1 / 8, 1 / 4])
    for metric in ("space_pct", "time_flops_pct", "time_bytes_pct"):
        values = [getattr(r.savings[1], metric) for r in results]
        assert values[0] > values[1] > values[2], (metric, values)


def test_batch_one_decode_is_memory_bound_and_a_huge_short_batch_compute_bound():
    assert plan_costs(PlanInputs(base="llama-3-8b")).arm("base").bound == "memory"
    assert (
        plan_costs(PlanInputs(base="llama-3-8b", batch_size=4096, context=1)).arm("base").bound == "compute"
    )


def test_json_output_is_one_object_with_every_arm():
    for task in ("args", "dexperts"):
        # the planner covers the arms with a cost term (every arm of these tasks has one)
        names = [name for name in arm_names() if ARMS[name].task in (None, task) and ARMS[name].cost]
        result = runner.invoke(app, ["plan", "--base", "llama-2-7b", "--task", task, "--json"])
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert [arm["name"] for arm in data["arms"]] == list(names)
        for arm in data["arms"]:
            assert {"parameters", "weights_bytes", "kv_bytes_per_token", "flops_per_token"} <= set(arm)
        assert {s["otter_arm"] for s in data["savings"]} == {names[-1]}


def test_table_and_plot(tmp_path):
    png = tmp_path / "savings.png"
    result = runner.invoke(app, ["plan", "--base", "llama-3-8b", "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert "otter-args" in result.stdout and "args-optimized" in result.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_config_sources_file_folder_and_name_agree(tmp_path):
    path = _write_json(tmp_path / "config.json", json.loads((SHIPPED_CONFIGS / "qwen2-7b.json").read_text()))
    by_name, by_file, by_folder = (
        model_shape(s, "causal-lm") for s in ("qwen2-7b", str(path), str(tmp_path))
    )
    assert by_name.parameters == by_file.parameters == by_folder.parameters


def _bad_invocation(args: list[str]) -> str:
    result = runner.invoke(app, ["plan", *args])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def test_bad_configs_fail_with_one_line(tmp_path):
    gpt2 = _write_json(tmp_path / "gpt2.json", {"model_type": "gpt2", "n_embd": 768})
    assert "unknown architecture model_type='gpt2'" in _bad_invocation(["--base", str(gpt2)])
    nameless = _write_json(tmp_path / "nameless.json", {"hidden_size": 64})
    assert "model_type=None" in _bad_invocation(["--base", str(nameless)])
    raw = json.loads((SHIPPED_CONFIGS / "llama-2-7b.json").read_text())
    del raw["hidden_size"]
    partial = _write_json(tmp_path / "partial.json", raw)
    assert "missing fields ['hidden_size']" in _bad_invocation(["--base", str(partial)])
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert "is not JSON" in _bad_invocation(["--base", str(broken)])
    assert "file not found" in _bad_invocation(["--base", str(tmp_path / "absent.json")])
    assert "no config.json" in _bad_invocation(["--base", str(tmp_path / "..")])
    assert "cached locally" in _bad_invocation(["--base", "otterbench-none/not-a-cached-model"])
    assert "dtype='int8'" in _bad_invocation(["--base", "llama-2-7b", "--dtype", "int8"])
    assert "use vocab" in _bad_invocation(
        ["--base", "llama-2-7b", "--task", "dexperts", "--signal", "scalar"]
    )


def _config(name: str):
    return config_from_dict(read_config(name))


@pytest.mark.parametrize(
    ("option", "value"),
    [("--ridge", "inf"), ("--ridge", "nan"), ("--otter-ratio", "nan"), ("--vllm-block-size", "0")],
)
def test_non_finite_or_out_of_range_plan_options_are_refused(option, value):
    result = runner.invoke(app, ["plan", "--base", "llama-2-7b", option, value])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and value in lines[0], result.output


def test_separate_models_are_given_by_model_role():
    models = {"reward_model": "llama-2-7b", "token_reward_model": "llama-3-8b"}  # the latter shares the vocab
    given = plan_costs(PlanInputs(base="llama-3-8b", models=models))
    assert (
        given.arm("args-faithful").parameters
        > plan_costs(PlanInputs(base="llama-3-8b")).arm("base").parameters
    )
    assert not [note for note in given.notes if "not given" in note]  # every role the arms need was given
    partly = plan_costs(PlanInputs(base="llama-3-8b", models={"reward_model": "llama-2-7b"}))
    assert "not given: --token-reward-model; planned with the base's shape (llama-3-8b)" in partly.notes
    with pytest.raises(PlanError, match=r"model role\(s\) \['critic'\] are not separate models"):
        PlanInputs(base="llama-3-8b", models={"critic": "llama-2-7b"})
