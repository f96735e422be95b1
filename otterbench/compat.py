"""The few places where transformers releases differ in name; everything else uses public APIs directly.

transformers 5.2x renamed the decoder's `past_key_values` argument/output to `cache` (the old name is a
deprecated alias until 5.40). Callers pass `**cache_kwargs(cache)` and read `output_cache(outputs)`.
"""

from __future__ import annotations

import inspect
from typing import Any

from transformers import LlamaModel, StaticCache

_STATIC_ARGS = inspect.signature(StaticCache.__init__).parameters
# 5.x StaticCache sizes batch, heads, device and dtype at its first update; older releases took them up front
STATIC_CACHE_IS_LAZY = "config" in _STATIC_ARGS and "max_batch_size" not in _STATIC_ARGS
CACHE_ARG = "cache" if "cache" in inspect.signature(LlamaModel.forward).parameters else "past_key_values"


def cache_kwargs(cache: Any) -> dict[str, Any]:
    """Keyword arguments that hand `cache` to a transformers model or decoder layer of this release."""
    return {CACHE_ARG: cache}


def output_cache(outputs: Any) -> Any:
    """The cache a transformers model output carries, under either name."""
    cache = getattr(outputs, "cache", None)
    return cache if cache is not None else getattr(outputs, "past_key_values", None)


def cache_from_kwargs(kwargs: dict[str, Any]) -> Any:
    """The cache an attention module received, under either name (None when absent)."""
    cache = kwargs.get("cache")
    return cache if cache is not None else kwargs.get("past_key_values")


def drop_last_tokens(cache: Any, count: int) -> None:
    """Remove the newest `count` positions from a cache (negative `crop` means this in every release).

    Static layers gained `crop` only in later 5.x releases (5.17 has none); there it is done as those releases
    do it: the layer's length tensor moves back in place (a static address), the stale slots are overwritten
    by the next `update`.
    """
    if count <= 0:
        return
    layers = getattr(cache, "layers", ())
    if any(not hasattr(layer, "crop") for layer in layers):
        for layer in layers:
            layer.cumulative_length.sub_(count)
        return
    cache.crop(-count)


def new_static_cache(config: Any, max_cache_len: int) -> StaticCache:
    """An empty StaticCache of `max_cache_len` slots per sequence for `config`, its tensors allocated lazily."""
    if not STATIC_CACHE_IS_LAZY:
        raise RuntimeError(
            "this transformers release's StaticCache is not lazily sized: use transformers >= 5"
        )
    return StaticCache(config=config, max_cache_len=max_cache_len)
