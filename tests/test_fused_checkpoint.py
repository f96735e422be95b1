"""The fused checkpoint is built once outside the measured process; the Otter arm's process holds it alone."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from otterbench.otter import load_fused
from otterbench.otter.packed import load_packed
from otterbench.run.fused_checkpoint import prepare_fused_checkpoint, with_fused_checkpoint
from otterbench.run.options import RunOptions
from otterbench.run.preflight import preflight
from otterbench.run.resolve import arm_job
from otterbench.run.session import ArmSession
from otterbench.trackers.memory import live_models, weights_bytes
from otterbench.workload import build_workload

SMALL = {"num_prompts": 2, "max_new_tokens": 2, "batch_size": 2, "repeats": 1, "warmup": 0, "k": 4}


def _config(tmp_path: Path, **fields):
    return RunOptions(suite="safety", device="cpu", out=tmp_path, **SMALL, **fields).to_config(tmp_path)


def _catalogue(config):
    return preflight(config)[0]


def _workload(config):
    from otterbench.models.tokenizer import load_tokenizer
    from otterbench.run.suite import load_prompts

    prompts = load_prompts(config.suite.prompts_path)[:2]
    return build_workload(prompts, load_tokenizer(), batch_size=2, max_new_tokens=2, knobs=config.suite.knobs)


def _models(entries):
    return Counter((m["class"], m["weights_bytes"]) for m in entries)


def test_otter_arm_holds_only_the_fused_checkpoint(tmp_path) -> None:
    config = _config(tmp_path, layout="fused")
    catalogue = _catalogue(config)
    config = with_fused_checkpoint(config, catalogue)
    assert config.insertion.layout == "fused" and Path(config.insertion.fused_path).is_dir()
    deployed = load_fused(config.insertion.fused_path)  # what a deployment loads
    before = _models(live_models())
    session = ArmSession(arm_job(config, catalogue, "otter-args", _workload(config), "cpu"))
    loaded = _models(session.models_in_memory) - before
    inner = deployed.model.model
    # exactly the fused causal LM and its inner model: no base, no split insertion beside it
    expected = Counter({("LlamaForCausalLM", weights_bytes(deployed.model)): 1})
    expected[("LlamaModel", weights_bytes(inner))] += 1
    assert loaded == expected
    assert sum(session.components.values()) == weights_bytes(deployed)  # weights = checkpoint + signal head


def test_otter_arm_holds_only_the_packed_checkpoint(tmp_path) -> None:
    config = _config(tmp_path, layout="packed")
    catalogue = _catalogue(config)
    config = with_fused_checkpoint(config, catalogue)
    deployed = load_packed(config.insertion.fused_path)
    before = _models(live_models())
    session = ArmSession(arm_job(config, catalogue, "otter-args", _workload(config), "cpu"))
    loaded = _models(session.models_in_memory) - before
    expected = Counter({("LlamaForCausalLM", weights_bytes(deployed.model)): 1})
    expected[("LlamaModel", weights_bytes(deployed.model.model))] += 1
    assert loaded == expected
    # what it stores beyond the base is the insertion, nothing more: no zero block
    assert session.components["inserted"] == session.otter_info["inserted_parameters"] * 4  # float32
    assert session.otter_info["layout"] == "packed"


def test_checkpoint_is_cached_by_its_inputs(tmp_path) -> None:
    def prepared(**fields):
        config = _config(tmp_path, **fields)
        return prepare_fused_checkpoint(config, _catalogue(config))

    first, again, other = (
        prepared(layout="fused"),
        prepared(layout="fused"),
        prepared(otter_ratio=0.5, layout="fused"),
    )
    packed = prepared(layout="packed")
    assert first == again and first != other and packed not in (first, other)
    assert prepared(layout="split") is None


@pytest.mark.parametrize("layout", ["fused", "packed"])
def test_unsavable_insertion_is_bad_input(tmp_path, layout: str) -> None:
    from otterbench.models.tiny import build_tiny_model
    from otterbench.otter import OtterSpec, insert_otter, save_otter
    from otterbench.run.config import RunInputError

    # a fresh insertion is sized so the heads divide its width (OtterSpec.from_ratio); a saved one keeps the
    # sizes it was trained with: hidden 128+32 over 4+2 heads
    spec = OtterSpec(extra_hidden_size=32, extra_kv_heads=1, extra_intermediate_size=64)
    folder = save_otter(insert_otter(build_tiny_model("base"), spec), tmp_path / "otter")
    with pytest.raises(RunInputError, match="--layout split"):
        config = _config(tmp_path, otter=str(folder), layout=layout)
        with_fused_checkpoint(config, _catalogue(config))
    assert not list((tmp_path / "fused-cache").glob("*/model-*"))  # refused before any shard was written


@pytest.mark.parametrize("layout", ["fused", "packed"])
def test_a_saved_base_is_streamed_from_its_safetensors(tmp_path, layout: str) -> None:
    import torch

    from otterbench.models.tiny import build_tiny_model
    from otterbench.otter import OtterSpec, insert_otter
    from otterbench.otter.fused import layout_state_dict
    from otterbench.otter.tensors import read_shards

    base = build_tiny_model("base", 0)
    base.save_pretrained(tmp_path / "base")
    from otterbench.models.sources import load_config
    from otterbench.run.catalogue import Catalogue, ModelEntry

    source = str(tmp_path / "base")
    config = _config(tmp_path, layout=layout, arms="base,otter-args", base=source)
    # the saved base has no tokenizer (preflight would refuse the run): its catalogue entry alone is needed
    catalogue = Catalogue({"base": ModelEntry("base", source, load_config(source, "base"))})
    folder = prepare_fused_checkpoint(config, catalogue)
    expected = layout_state_dict(
        insert_otter(base, OtterSpec.from_ratio(base.config, 0.125, signal="vocab")), layout
    )
    written = read_shards(folder)
    assert all(
        torch.equal(written[name], expected[name]) for name in written
    )  # the in-memory layout's tensors
    assert set(expected) - set(written) <= {"signal_head.weight"}  # fused keeps it in its own file
