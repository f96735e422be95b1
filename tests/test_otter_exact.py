"""The main invariant first: the split layout's logits are torch.equal to the base model's.

torch.equal is right here because it is the same computation: the split layout's wrappers hand every
original module a contiguous tensor of the base's shape and call it unchanged (otterbench/otter/wrappers.py),
and the original heads' KV cache is a cache of the same kind and length as the base's. Any difference is a
broken wrapper, never a BLAS summing in another order.
"""

from __future__ import annotations

import pytest
import torch
from conftest import left_padded_batch

from otterbench.compat import cache_kwargs, output_cache
from otterbench.models.build import make_causal_lm
from otterbench.otter import OtterSpec, insert_otter

MODELS = {
    "llama-gqa": ("llama", {}),
    "qwen2-bias": ("qwen2", {}),
    "mistral": ("mistral", {}),
    "llama-tied": ("llama", {"tie_word_embeddings": True}),
}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def build(name: str, dtype: torch.dtype, init: str = "normal"):
    family, sizes = MODELS[name]
    base = make_causal_lm(family, seed=1, **sizes).to(dtype)
    return base, insert_otter(base, OtterSpec.from_ratio(base.config, 0.25, init=init))


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("name", MODELS)
@torch.inference_mode()
def test_full_sequence_logits_are_equal(name: str, dtype: torch.dtype) -> None:
    base, otter = build(name, dtype)
    ids, mask = left_padded_batch()
    assert torch.equal(otter(ids).logits, base(ids).logits)
    assert torch.equal(otter(ids, attention_mask=mask).logits, base(ids, attention_mask=mask).logits)


def decode_stepwise(
    model, ids, mask, steps: int, otter: bool
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Prefill then feed the given ids one at a time with the KV cache; return logits (and signals)."""
    prompt = ids.shape[1] - steps
    out = model(ids[:, :prompt], attention_mask=mask[:, :prompt], use_cache=True)
    logits, signals = [out.logits], [out.signal] if otter else []
    cache = out.past_key_values if otter else output_cache(out)
    for t in range(prompt, ids.shape[1]):
        kwargs = {"past_key_values": cache} if otter else cache_kwargs(cache)
        out = model(ids[:, t : t + 1], attention_mask=mask[:, : t + 1], use_cache=True, **kwargs)
        cache = out.past_key_values if otter else output_cache(out)
        logits.append(out.logits)
        if otter:
            signals.append(out.signal)
    return logits, signals


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("name", MODELS)
@torch.inference_mode()
def test_cached_decoding_logits_are_equal(name: str, dtype: torch.dtype) -> None:
    base, otter = build(name, dtype)
    ids, mask = left_padded_batch()
    ids = torch.cat([ids, torch.randint(3, 256, (3, 5))], dim=1)
    mask = torch.cat([mask, torch.ones(3, 5, dtype=mask.dtype)], dim=1)
    base_logits, _ = decode_stepwise(base, ids, mask, steps=5, otter=False)
    otter_logits, _ = decode_stepwise(otter, ids, mask, steps=5, otter=True)
    assert len(base_logits) == len(otter_logits) == 6
    for expected, got in zip(base_logits, otter_logits):
        assert torch.equal(got, expected)


@pytest.mark.parametrize("name", MODELS)
@torch.inference_mode()
def test_cached_signal_matches_full_pass(name: str) -> None:
    """The inserted heads' own cache gives the same signal as one pass over the whole sequence."""
    _, otter = build(name, torch.float32)
    ids, mask = left_padded_batch()
    _, signals = decode_stepwise(otter, ids, mask, steps=4, otter=True)
    full = otter(ids, attention_mask=mask).signal
    stepwise = torch.cat(signals, dim=1)
    real = mask.bool()
    torch.testing.assert_close(stepwise[real], full[real], atol=1e-5, rtol=1e-5)


@torch.inference_mode()
def test_base_model_object_still_runs_the_original() -> None:
    base = make_causal_lm("llama", seed=1)
    ids, _ = left_padded_batch()
    before = base(ids).logits  # the same model on the same ids before and after: the same computation
    insert_otter(base, OtterSpec.from_ratio(base.config))
    assert torch.equal(base(ids).logits, before)
    assert type(base.model.layers[0].self_attn).__name__ == "LlamaAttention"
