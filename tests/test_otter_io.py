"""save_otter / load_otter: exact round trip, small files, clear refusals."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import left_padded_batch

from otterbench.models.build import make_causal_lm
from otterbench.otter import OtterSpec, insert_otter, load_otter, save_otter
from otterbench.otter.io import CONFIG_FILE, WEIGHTS_FILE


@pytest.fixture()
def saved(tmp_path):
    base = make_causal_lm("llama", seed=6)
    otter = insert_otter(base, OtterSpec.from_ratio(base.config, 0.25, init="normal", signal="scalar"))
    save_otter(otter, tmp_path, metadata={"distilled": False})
    return base, otter, tmp_path


@torch.inference_mode()
def test_round_trip_reproduces_signal_exactly(saved) -> None:
    base, otter, directory = saved
    loaded = load_otter(base, directory)
    ids, mask = left_padded_batch()
    # the same computation: the same base and the same inserted weights, read back from the file
    assert torch.equal(loaded(ids, attention_mask=mask).signal, otter(ids, attention_mask=mask).signal)
    assert loaded.spec == otter.spec
    assert sorted(p.name for p in directory.iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]
    assert json.loads((directory / CONFIG_FILE).read_text())["metadata"] == {"distilled": False}


def test_mismatched_base_is_refused(saved) -> None:
    _, _, directory = saved
    for other in (
        make_causal_lm("llama", vocab_size=300),
        make_causal_lm("qwen2"),
        make_causal_lm("llama", hidden_size=96),
    ):
        with pytest.raises(ValueError, match="built for another base model"):
            load_otter(other, directory)


def test_corrupt_or_missing_files_are_refused(saved) -> None:
    base, _, directory = saved
    (directory / WEIGHTS_FILE).write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="corrupt Otter weights"):
        load_otter(base, directory)
    (directory / WEIGHTS_FILE).unlink()
    with pytest.raises(ValueError, match=f"{WEIGHTS_FILE} is missing"):
        load_otter(base, directory)
    (directory / CONFIG_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="corrupt Otter config"):
        load_otter(base, directory)
    (directory / CONFIG_FILE).unlink()
    with pytest.raises(ValueError, match=f"{CONFIG_FILE} is missing"):
        load_otter(base, directory)


def test_weights_that_do_not_fit_are_refused(saved, tmp_path_factory) -> None:
    base, _, directory = saved
    other_dir = tmp_path_factory.mktemp("other")
    other = insert_otter(base, OtterSpec.from_ratio(base.config, 0.5, signal="scalar"))
    save_otter(other, other_dir)
    (directory / WEIGHTS_FILE).write_bytes((other_dir / WEIGHTS_FILE).read_bytes())
    with pytest.raises(ValueError, match="do not fit"):
        load_otter(base, directory)
