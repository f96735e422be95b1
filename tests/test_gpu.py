"""GPU checks (skipped without CUDA): exactness on the device, the fused deviation, a suite on a real pair."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from otterbench.cli import app
from otterbench.compat import cache_kwargs, output_cache
from otterbench.models.build import make_causal_lm, make_reward_model
from otterbench.models.tokenizer import load_tokenizer
from otterbench.otter import OtterSpec, insert_otter, measure_disruption

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("family", ["llama", "qwen2"])
@torch.inference_mode()
def test_split_logits_equal_on_cuda(family: str, dtype: torch.dtype) -> None:
    base = make_causal_lm(family, seed=1, hidden_size=256, num_heads=8, num_kv_heads=2).to(CUDA, dtype)
    otter = insert_otter(base, OtterSpec.from_ratio(base.config, 0.125, init="normal"))
    ids = torch.randint(3, 256, (4, 24), device=CUDA)
    mask = torch.ones_like(ids)
    # torch.equal: the same computation, as on CPU (tests/test_otter_exact.py): originals called unchanged
    mask[1, :5] = 0
    assert torch.equal(otter(ids, attention_mask=mask).logits, base(ids, attention_mask=mask).logits)
    out_b = base(ids[:, :20], attention_mask=mask[:, :20], use_cache=True)
    out_o = otter(ids[:, :20], attention_mask=mask[:, :20], use_cache=True)
    cache_b, cache_o = output_cache(out_b), out_o.past_key_values
    for t in range(20, 24):
        out_b = base(
            ids[:, t : t + 1], attention_mask=mask[:, : t + 1], use_cache=True, **cache_kwargs(cache_b)
        )
        out_o = otter(
            ids[:, t : t + 1], attention_mask=mask[:, : t + 1], use_cache=True, past_key_values=cache_o
        )
        cache_b, cache_o = output_cache(out_b), out_o.past_key_values
        assert torch.equal(out_o.logits, out_b.logits)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
@torch.inference_mode()
def test_fused_deviation_is_measured_on_cuda(dtype: torch.dtype) -> None:
    base = make_causal_lm("llama", seed=2, hidden_size=256, num_heads=8, num_kv_heads=2).to(CUDA, dtype)
    fused = insert_otter(base, OtterSpec.from_ratio(base.config, 0.125, init="normal")).to_fused()
    ids = torch.randint(3, 256, (4, 24), device=CUDA)
    report = measure_disruption(base, fused, ids)
    print(
        f"fused on cuda {dtype}: max |dlogit| {report.max_abs_logit_diff:.3e}, argmax agreement "
        f"{report.argmax_agreement:.4f}, exact {report.exact}"
    )
    assert report.argmax_agreement >= (0.99 if dtype == torch.float32 else 0.9)


def test_safety_suite_on_a_real_architecture_pair_built_on_the_gpu(tmp_path) -> None:
    """A Llama pair of real architecture (random weights), saved and loaded by path like the paper profile."""
    tokenizer = load_tokenizer()
    sizes = dict(
        vocab_size=len(tokenizer),
        hidden_size=512,
        num_layers=8,
        num_heads=8,
        num_kv_heads=2,
        intermediate_size=1536,
    )
    for name, model in (
        ("llm", make_causal_lm("llama", seed=3, **sizes)),
        ("rm", make_reward_model(seed=4, **sizes)),
    ):
        model.to(torch.bfloat16).save_pretrained(tmp_path / name)
        tokenizer.save_pretrained(tmp_path / name)
    args = [
        "run",
        "--suite",
        "safety",
        "--base",
        str(tmp_path / "llm"),
        "--reward-model",
        str(tmp_path / "rm"),
        "--device",
        "cuda",
        "--dtype",
        "bfloat16",
        "--layout",
        "split",  # the exactness check below is the split layout's guarantee
        "--num-prompts",
        "8",
        "--max-new-tokens",
        "8",
        "--repeats",
        "2",
        "--out",
        str(tmp_path / "out"),
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)
    assert [a["status"] for a in results["arms"]] == ["ok"] * 4
    assert all(a["memory"]["method"] in ("nvml", "torch") for a in results["arms"])
    assert results["non_disruption"]["exact"] is True
