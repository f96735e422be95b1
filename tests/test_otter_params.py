"""Frozen base, trainable insertion, closed-form counts, and the three initialisations."""

from __future__ import annotations

import pytest
import torch
from conftest import left_padded_batch

from otterbench.models.build import make_causal_lm
from otterbench.otter import OtterSpec, count_inserted_parameters, insert_otter


def test_base_state_dict_unchanged_by_insertion_and_training() -> None:
    base = make_causal_lm("qwen2", seed=2)
    before = {name: t.clone() for name, t in base.state_dict().items()}
    otter = insert_otter(base, OtterSpec.from_ratio(base.config, 0.25, init="copy"))
    trainable = [name for name, p in otter.named_parameters() if p.requires_grad]
    assert trainable and all(name.startswith("inserted.") for name in trainable)
    assert not any(p.requires_grad for p in base.parameters())
    optimizer = torch.optim.Adam([p for p in otter.parameters() if p.requires_grad], lr=1e-2)
    inserted_before = {name: t.clone() for name, t in otter.inserted_state_dict().items()}
    ids, mask = left_padded_batch()
    otter.train()
    loss = otter(ids, attention_mask=mask).signal.pow(2).mean()
    loss.backward()
    optimizer.step()
    after = base.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[name], after[name]) for name in before)
    changed = [n for n, t in otter.inserted_state_dict().items() if not torch.equal(t, inserted_before[n])]
    assert changed, "the optimizer step should move inserted parameters"


@pytest.mark.parametrize(
    ("family", "sizes"),
    [
        ("llama", {}),
        ("qwen2", {}),
        ("llama", {"attention_bias": True, "mlp_bias": True}),
        ("llama", {"num_kv_heads": 4}),
    ],
)
@pytest.mark.parametrize("signal", ["vocab", "scalar"])
def test_inserted_count_matches_closed_form(family: str, sizes: dict, signal: str) -> None:
    base = make_causal_lm(family, **sizes)
    otter = insert_otter(base, OtterSpec.from_ratio(base.config, 0.125, signal=signal))
    assert otter.num_inserted_parameters() == count_inserted_parameters(otter.dims, otter.spec)
    assert sum(t.numel() for t in otter.inserted_state_dict().values()) == otter.num_inserted_parameters()


def test_signal_shapes() -> None:
    base = make_causal_lm("llama")
    ids, mask = left_padded_batch()
    with torch.inference_mode():
        vocab = insert_otter(base, OtterSpec.from_ratio(base.config, signal="vocab"))(
            ids, attention_mask=mask
        )
        scalar = insert_otter(base, OtterSpec.from_ratio(base.config, signal="scalar"))(
            ids, attention_mask=mask
        )
    assert vocab.signal.shape == (3, 9, 256)
    assert scalar.signal.shape == (3, 9, 1)


@torch.inference_mode()
def test_zeros_init_gives_zero_signal_and_copy_a_varying_one() -> None:
    base = make_causal_lm("llama", seed=3)
    ids, mask = left_padded_batch()
    zeros = insert_otter(base, OtterSpec.from_ratio(base.config, init="zeros"))(
        ids, attention_mask=mask
    ).signal
    assert torch.count_nonzero(zeros) == 0
    copied = insert_otter(base, OtterSpec.from_ratio(base.config, init="copy"))(
        ids, attention_mask=mask
    ).signal
    assert copied[mask.bool()].std() > 0


@torch.inference_mode()
def test_copy_init_extra_stream_mirrors_first_channels() -> None:
    """With copy init, the signal head sees exactly the first dx channels of the final normed state."""
    base = make_causal_lm("llama", seed=4)
    otter = insert_otter(base, OtterSpec.from_ratio(base.config, 0.25, init="copy"))
    ids, mask = left_padded_batch()
    hidden = base.model(ids, attention_mask=mask).last_hidden_state
    dx = otter.spec.extra_hidden_size
    expected = hidden[..., :dx] @ base.lm_head.weight[:, :dx].T
    torch.testing.assert_close(otter(ids, attention_mask=mask).signal, expected, atol=1e-5, rtol=1e-4)


def test_normal_init_is_seeded() -> None:
    base = make_causal_lm("llama")
    a = insert_otter(base, OtterSpec.from_ratio(base.config, init="normal")).inserted_state_dict()
    b = insert_otter(base, OtterSpec.from_ratio(base.config, init="normal")).inserted_state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
