"""The fused layout: a standard widened checkpoint whose deviation from the base is measured."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import left_padded_batch
from safetensors import safe_open
from transformers import AutoModelForCausalLM

from otterbench.compat import cache_kwargs, output_cache
from otterbench.models.build import make_causal_lm
from otterbench.otter import (
    OtterSpec,
    PrefixRMSNorm,
    count_fused_extra_parameters,
    insert_otter,
    load_fused,
    measure_disruption,
    save_fused,
)
from otterbench.otter.layouts import SIGNAL


def build(family: str = "llama", ratio: float = 0.25, **sizes):
    base = make_causal_lm(family, seed=5, **sizes)
    otter = insert_otter(base, OtterSpec.from_ratio(base.config, ratio, init="normal"))
    return base, otter, otter.to_fused()


@torch.inference_mode()
def greedy(model, ids: torch.Tensor, steps: int, is_otter: bool) -> torch.Tensor:
    out = model(ids, use_cache=True)
    tokens = []
    for _ in range(steps):
        token = out.logits[:, -1].argmax(-1, keepdim=True)
        tokens.append(token)
        cache = out.past_key_values if is_otter else output_cache(out)
        kwargs = {"past_key_values": cache} if is_otter else cache_kwargs(cache)
        out = model(token, use_cache=True, **kwargs)
    return torch.cat(tokens, dim=1)


@pytest.mark.parametrize(
    ("family", "sizes"), [("llama", {}), ("qwen2", {}), ("llama", {"tie_word_embeddings": True})]
)
def test_fused_greedy_tokens_match_base_over_32_steps(family: str, sizes: dict) -> None:
    base, _, fused = build(family, **sizes)
    ids = torch.randint(3, 256, (2, 6), generator=torch.Generator().manual_seed(0))
    # token ids, not logits: the fused layout's widened GEMMs may sum in another order (its logits are
    # compared within a tolerance below), but it must pick the same tokens
    assert torch.equal(greedy(fused, ids, 32, True), greedy(base, ids, 32, False))


@pytest.mark.parametrize("family", ["llama", "qwen2", "mistral"])
@torch.inference_mode()
def test_fused_signal_close_to_split_and_disruption_measured(family: str) -> None:
    base, otter, fused = build(family)
    ids, mask = left_padded_batch()
    torch.testing.assert_close(
        fused(ids, attention_mask=mask).signal, otter(ids, attention_mask=mask).signal, atol=1e-4, rtol=0
    )
    report = measure_disruption(base, fused, ids, mask)
    assert report.positions == int(mask.sum())
    assert report.argmax_agreement == 1.0
    assert 0.0 <= report.max_abs_logit_diff < 1e-4
    assert report.exact == (report.max_abs_logit_diff == 0.0)


def test_fused_is_a_standard_widened_checkpoint(tmp_path) -> None:
    base, otter, fused = build("llama", ratio=0.5, tie_word_embeddings=True)  # 96 hidden over 6 heads
    config = fused.model.config
    spec, dims = otter.spec, otter.dims
    assert type(fused.model) is type(base)
    assert config.hidden_size == dims.hidden_size + spec.extra_hidden_size
    assert config.num_attention_heads == dims.num_heads + spec.query_heads_for(dims)
    assert config.num_key_value_heads == dims.num_kv_heads + spec.extra_kv_heads
    assert config.intermediate_size == dims.intermediate_size + spec.extra_intermediate_size
    assert config.otter_original_hidden_size == dims.hidden_size
    base_count = sum(p.numel() for p in base.parameters())
    assert fused.num_stored_extra_parameters(base_count) == count_fused_extra_parameters(dims, spec, True)
    save_fused(fused, tmp_path)
    plain = AutoModelForCausalLM.from_pretrained(tmp_path, local_files_only=True)
    assert type(plain) is type(base)  # transformers reads the family's layout from model_type
    assert not any(isinstance(m, PrefixRMSNorm) for m in plain.modules())


def test_fused_checkpoint_declares_its_architecture_and_holds_the_signal_head(tmp_path) -> None:
    _, _, fused = build("qwen2", ratio=0.5)
    save_fused(fused, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["OtterQwen2ForCausalLM"]  # an engine without the plugin refuses it
    assert sorted(p.name for p in tmp_path.glob("*.safetensors")) == ["model.safetensors"]
    with safe_open(str(tmp_path / "model.safetensors"), framework="pt") as weights:
        assert torch.equal(weights.get_tensor(SIGNAL), fused.signal_head.weight)


@torch.inference_mode()
def test_save_pretrained_and_load_fused_give_the_same_outputs(tmp_path) -> None:
    _, _, fused = build("qwen2", ratio=0.5)
    save_fused(fused, tmp_path)
    loaded = load_fused(tmp_path)
    ids, mask = left_padded_batch()
    # the same computation: the same weights in the same modules, dtype and attention implementation
    a, b = fused(ids, attention_mask=mask), loaded(ids, attention_mask=mask)
    assert torch.equal(a.logits, b.logits)
    assert torch.equal(a.signal, b.signal)
    assert loaded.spec == fused.spec


def test_load_fused_refuses_a_plain_checkpoint(tmp_path) -> None:
    make_causal_lm("llama").save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="not a fused Otter checkpoint"):
        load_fused(tmp_path)


def test_from_ratio_sizes_a_hidden_width_the_heads_divide() -> None:
    base = make_causal_lm("llama", seed=5)  # hidden 64 over 4 heads; ratio 1/4 adds 2 heads
    spec = OtterSpec.from_ratio(base.config, 0.25)
    assert spec.extra_hidden_size == 14  # the nearest to 16 with (64 + dx) % 6 == 0: 78 = 6 x 13


def test_save_fused_explains_a_hidden_size_transformers_would_refuse(tmp_path) -> None:
    base = make_causal_lm("llama", seed=5)
    spec = OtterSpec(extra_hidden_size=16, extra_kv_heads=1, extra_intermediate_size=32)
    fused = insert_otter(base, spec).to_fused()  # 80 hidden over 6 heads
    with pytest.raises(
        ValueError, match=r"multiple of num_attention_heads \(6\).*extra_hidden_size = .*= 32"
    ):
        save_fused(fused, tmp_path)
