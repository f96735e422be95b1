"""Which tensor-parallel sizes a fused Otter checkpoint allows, the divisible default, and preflight's line."""

from __future__ import annotations

import pytest
from transformers import LlamaConfig

from otterbench.models.tiny import build_tiny_model
from otterbench.otter import OtterSpec, insert_otter, save_otter
from otterbench.otter.spec import BaseDims, base_tensor_parallel_problems, tensor_parallel_problems
from otterbench.run.config import resolve_run_config
from otterbench.run.preflight import parallel_problems

LLAMA_3_8B = LlamaConfig(
    hidden_size=4096,
    num_attention_heads=32,
    num_key_value_heads=8,
    intermediate_size=14336,
    vocab_size=128256,
)


def test_one_eighth_of_llama_3_8b_splits_over_no_gpu_count() -> None:
    spec, dims = OtterSpec.from_ratio(LLAMA_3_8B, 0.125), BaseDims.from_config(LLAMA_3_8B)
    assert spec.extra_kv_heads == 1
    assert tensor_parallel_problems(dims, spec, 2) == ["kv heads 8+1=9 is not a multiple of 2"]
    assert tensor_parallel_problems(dims, spec, 8) == [
        "query heads 32+4=36 is not a multiple of 8",
        "kv heads 8+1=9 is not a multiple of 8",
    ]


@pytest.mark.parametrize(("size", "kv_heads"), [(1, 1), (2, 2), (4, 4), (8, 8)])
def test_divisible_default_picks_the_nearest_kv_heads(size: int, kv_heads: int) -> None:
    spec = OtterSpec.from_ratio(LLAMA_3_8B, 0.125, tensor_parallel_size=size)
    dims = BaseDims.from_config(LLAMA_3_8B)
    assert spec.extra_kv_heads == kv_heads
    assert spec.query_heads_for(dims) == 4 * kv_heads  # GQA grouping kept
    assert tensor_parallel_problems(dims, spec, size) == []
    assert (dims.intermediate_size + spec.extra_intermediate_size) % size == 0
    heads = dims.num_heads + spec.query_heads_for(dims)
    assert (dims.hidden_size + spec.extra_hidden_size) % heads == 0  # a transformers checkpoint's rule


def test_a_base_that_cannot_be_split_is_named() -> None:
    dims = BaseDims.from_config(LlamaConfig(hidden_size=96, num_attention_heads=6, num_key_value_heads=3))
    assert base_tensor_parallel_problems(dims, 4) == [
        "query heads 6 is not a multiple of 4",
        "kv heads 3 is not a multiple of 4",
    ]


def test_preflight_refuses_an_indivisible_insertion_in_one_line_naming_one_that_divides(tmp_path) -> None:
    base = build_tiny_model("base")
    spec = OtterSpec.from_ratio(base.config, init="zeros")
    dims = BaseDims.from_config(base.config)
    assert tensor_parallel_problems(dims, spec, 2)  # the tiny profile's default: one extra kv head
    folder = save_otter(insert_otter(base, spec), tmp_path / "otter")
    config = resolve_run_config("safety", out_dir=tmp_path, otter=str(folder), device="cpu")
    (line,) = parallel_problems(config, 2)
    assert line.startswith(f"--tensor-parallel-size 2: the Otter insertion {folder} cannot be split (")
    fixed = OtterSpec.from_ratio(base.config, init="zeros", tensor_parallel_size=2)
    assert f"extra_kv_heads={fixed.extra_kv_heads} " in line
    assert f"extra_intermediate_size={fixed.extra_intermediate_size}," in line
    assert parallel_problems(config, 1) == []
    fresh = resolve_run_config("safety", out_dir=tmp_path, device="cpu")
    assert parallel_problems(fresh, 2) == []  # a fresh insertion is sized for the ranks
