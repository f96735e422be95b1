"""Bad specs and unsupported architectures are refused with a message naming the field and the range."""

from __future__ import annotations

import pytest
from transformers import GPT2Config, GPT2LMHeadModel

from otterbench.models.build import make_causal_lm, make_config
from otterbench.otter import OtterSpec, insert_otter


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"extra_hidden_size": -8, "extra_kv_heads": 1, "extra_intermediate_size": 8}, "extra_hidden_size"),
        ({"extra_hidden_size": 0, "extra_kv_heads": 1, "extra_intermediate_size": 8}, "extra_hidden_size"),
        ({"extra_hidden_size": 8, "extra_kv_heads": 0, "extra_intermediate_size": 8}, "extra_kv_heads"),
        (
            {"extra_hidden_size": 8, "extra_kv_heads": 1, "extra_intermediate_size": -1},
            "extra_intermediate_size",
        ),
        ({"extra_hidden_size": 8.5, "extra_kv_heads": 1, "extra_intermediate_size": 8}, "extra_hidden_size"),
        (
            {"extra_hidden_size": 8, "extra_kv_heads": 1, "extra_intermediate_size": 8, "signal": "logits"},
            "signal",
        ),
        (
            {"extra_hidden_size": 8, "extra_kv_heads": 1, "extra_intermediate_size": 8, "init": "random"},
            "init",
        ),
        (
            {
                "extra_hidden_size": 8,
                "extra_kv_heads": 1,
                "extra_intermediate_size": 8,
                "extra_query_heads": 0,
            },
            "extra_query_heads",
        ),
    ],
)
def test_invalid_values_name_field_value_and_range(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError) as error:
        OtterSpec(**kwargs)
    message = str(error.value)
    assert field in message and repr(kwargs[field]) in message and "expected" in message


@pytest.mark.parametrize("ratio", [0, -0.5, 1.5, True])
def test_from_ratio_refuses_out_of_range(ratio: float) -> None:
    with pytest.raises(ValueError, match=r"ratio=.*expected a number in \(0, 1\]"):
        OtterSpec.from_ratio(make_config("llama"), ratio=ratio)


def test_extra_heads_breaking_gqa_grouping_are_refused() -> None:
    base = make_causal_lm("llama", num_heads=4, num_kv_heads=2)  # 2 query heads per kv head
    spec = OtterSpec(extra_hidden_size=16, extra_kv_heads=1, extra_intermediate_size=16, extra_query_heads=3)
    with pytest.raises(ValueError, match=r"extra_query_heads=3 breaks GQA grouping.*= 2"):
        insert_otter(base, spec)


def test_from_ratio_derives_eighths() -> None:
    config = make_config("llama", hidden_size=64, intermediate_size=128, num_kv_heads=2)
    spec = OtterSpec.from_ratio(config, 0.125)
    assert (spec.extra_hidden_size, spec.extra_intermediate_size, spec.extra_kv_heads) == (8, 16, 1)


def test_unsupported_architecture_names_class_and_supported() -> None:
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64))
    spec = OtterSpec(extra_hidden_size=4, extra_kv_heads=1, extra_intermediate_size=4)
    with pytest.raises(
        ValueError, match=r"GPT2LMHeadModel.*LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM"
    ):
        insert_otter(model, spec)
