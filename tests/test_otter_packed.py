"""The packed layout (engine-ready, zero-free) and the streamed checkpoint build of packed and fused."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import left_padded_batch

from otterbench.compat import cache_kwargs, output_cache
from otterbench.models.build import make_causal_lm
from otterbench.otter import OtterSpec, insert_otter, load_fused, save_otter
from otterbench.otter.checkpoint import build_checkpoint, fresh_inserted
from otterbench.otter.fused import layout_state_dict
from otterbench.otter.io import WEIGHTS_FILE
from otterbench.otter.packed import PackedLinear, load_packed
from otterbench.otter.spec import count_inserted_parameters
from otterbench.otter.tensors import FolderTensors, SavedInserted, read_shards
from otterbench.plan.costs import plan_costs
from otterbench.plan.inputs import PlanInputs
from otterbench.plan.shapes import read_config
from otterbench.trackers.memory import weights_bytes

FAMILIES = [
    ("llama", {}),
    ("qwen2", {}),
    ("mistral", {}),
    ("llama", {"tie_word_embeddings": True}),
    ("llama", {"attention_bias": True, "mlp_bias": True, "num_kv_heads": 4}),
]


def build(family: str = "llama", init: str = "normal", dtype: torch.dtype = torch.float32, **sizes):
    base = make_causal_lm(family, seed=5, **sizes).to(dtype)
    otter = insert_otter(base, OtterSpec.from_ratio(base.config, 0.25, init=init))
    return base, otter


@torch.inference_mode()
def greedy(model, ids: torch.Tensor, steps: int, is_otter: bool) -> torch.Tensor:
    out = model(ids, use_cache=True)
    tokens = []
    for _ in range(steps):
        tokens.append(out.logits[:, -1].argmax(-1, keepdim=True))
        cache = out.past_key_values if is_otter else output_cache(out)
        kwargs = {"past_key_values": cache} if is_otter else cache_kwargs(cache)
        out = model(tokens[-1], use_cache=True, **kwargs)
    return torch.cat(tokens, dim=1)


@pytest.mark.parametrize(("family", "sizes"), FAMILIES)
@torch.inference_mode()
def test_packed_logits_match_the_base_in_float32_with_identical_tokens(family: str, sizes: dict) -> None:
    # [W; A] x_o reduces over the base's own width, but a BLAS may block a taller matrix differently, so
    # exactness is measured, not assumed: identical greedy tokens and logits within float32 rounding
    base, otter = build(family, **sizes)
    packed = otter.to_packed()
    ids, mask = left_padded_batch()
    torch.testing.assert_close(
        packed(ids, attention_mask=mask).logits, base(ids, attention_mask=mask).logits, atol=1e-5, rtol=0
    )
    prompt = torch.randint(3, 256, (2, 6), generator=torch.Generator().manual_seed(0))
    assert torch.equal(greedy(packed, prompt, 24, True), greedy(base, prompt, 24, False))
    # the signal is the split layout's up to float32 summation order
    torch.testing.assert_close(
        packed(ids, attention_mask=mask).signal, otter(ids, attention_mask=mask).signal, atol=1e-4, rtol=0
    )


@pytest.mark.parametrize(("family", "sizes"), FAMILIES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_packed_stores_exactly_the_inserted_parameters(family: str, sizes: dict, dtype: torch.dtype) -> None:
    base, otter = build(family, dtype=dtype, **sizes)
    packed = otter.to_packed()
    inserted = count_inserted_parameters(otter.dims, otter.spec)
    element = torch.finfo(dtype).bits // 8
    assert weights_bytes(packed) - weights_bytes(base) == inserted * element  # no zero block stored
    projections = [m for m in packed.modules() if isinstance(m, PackedLinear) and m.extra_weight is not None]
    assert len(projections) == 7 * otter.dims.num_layers  # q, k, v, o, gate, up, down in every layer


def test_planner_prices_packed_as_split_and_counts_stored_bytes_per_layout(tmp_path) -> None:
    # Llama-2-7B shapes with the project's 4096-token vocabulary: scripts/gpu_pair.py's 7B pair
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**read_config("llama-2-7b"), "vocab_size": 4096}))
    plans = {
        layout: plan_costs(PlanInputs(base=str(config), layout=layout)) for layout in ("split", "packed")
    }
    split, packed = plans["split"], plans["packed"]
    assert (
        packed.stored_extra_parameters["packed"] == packed.inserted_parameters == 914_915_840
    )  # 1,745 MiB bf16
    assert packed.stored_extra_parameters["fused"] == 1_726_513_664
    assert [a.bytes_per_step for a in packed.arms] == [a.bytes_per_step for a in split.arms]


def _saved_base(tmp_path, family: str = "llama", **sizes):
    base = make_causal_lm(family, seed=5, **sizes)
    base.save_pretrained(tmp_path / "base")
    tied = bool(base.config.tie_word_embeddings)
    return base, FolderTensors(tmp_path / "base", tied, "cpu", torch.float32)


@pytest.mark.parametrize("init", ["copy", "normal", "zeros"])
@pytest.mark.parametrize("layout", ["fused", "packed"])
@pytest.mark.parametrize(("family", "sizes"), [("llama", {}), ("qwen2", {"tie_word_embeddings": True})])
def test_streamed_build_writes_the_in_memory_tensors(tmp_path, init, layout, family, sizes) -> None:
    base, source = _saved_base(tmp_path, family, **sizes)
    spec = OtterSpec.from_ratio(base.config, 0.125, init=init)
    inserted = fresh_inserted(base.config, spec, "cpu", torch.float32)
    folder = build_checkpoint(
        tmp_path / layout, layout, source, base.config, inserted, spec, max_shard_bytes=1
    )
    expected = layout_state_dict(insert_otter(base, spec), layout)
    written = read_shards(folder)
    if layout == "fused":  # its signal head lives in a file of its own
        written["signal_head.weight"] = load_fused(folder).signal_head.weight.detach()
    assert written.keys() == expected.keys()
    assert all(torch.equal(written[name], expected[name]) for name in expected)
    assert (
        len(list(folder.glob("model-*.safetensors"))) == base.config.num_hidden_layers + 2
    )  # a shard a piece


def test_streamed_build_reads_the_base_one_piece_at_a_time(tmp_path) -> None:
    base, source = _saved_base(tmp_path)
    reads = []
    original = source.read
    source.read = lambda names: reads.append(list(names)) or original(names)
    spec = OtterSpec.from_ratio(base.config, 0.125)
    build_checkpoint(
        tmp_path / "packed",
        "packed",
        source,
        base.config,
        fresh_inserted(base.config, spec, "cpu", torch.float32),
        spec,
    )
    layers = [{name.split(".")[2] for name in names if name.startswith("model.layers.")} for names in reads]
    assert all(len(found) <= 1 for found in layers)  # never two layers' tensors at once
    assert sum(len(names) for names in reads) <= len(source.where) + 1  # each tensor read once (tied: twice)


@pytest.mark.parametrize("layout", ["fused", "packed"])
@torch.inference_mode()
def test_streamed_build_of_a_saved_insertion_loads_as_its_layout(tmp_path, layout: str) -> None:
    base, source = _saved_base(tmp_path)
    otter = insert_otter(base, OtterSpec.from_ratio(base.config, 0.125, init="normal"))
    save_otter(otter, tmp_path / "otter")
    saved = SavedInserted(
        FolderTensors(tmp_path / "otter", False, "cpu", torch.float32, file_name=WEIGHTS_FILE)
    )
    folder = build_checkpoint(tmp_path / layout, layout, source, base.config, saved, otter.spec)
    loaded = (load_fused if layout == "fused" else load_packed)(folder)
    in_memory = otter.to_fused() if layout == "fused" else otter.to_packed()
    ids, mask = left_padded_batch()
    a, b = loaded(ids, attention_mask=mask), in_memory(ids, attention_mask=mask)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.signal, b.signal)


def test_load_packed_refuses_another_folder(tmp_path) -> None:
    base, _ = _saved_base(tmp_path)
    with pytest.raises(ValueError, match="not a packed Otter checkpoint"):
        load_packed(tmp_path / "base")
