"""The few places where transformers releases differ in name; everything else uses public APIs directly.

transformers 5.2x renamed the decoder's `past_key_values` argument/output to `cache` (the old name is a
deprecated alias until 5.40). Callers pass `**cache_kwargs(cache)` and read `output_cache(outputs)`.
"""

from __future__ import annotations

import inspect
from typing import Any

from transformers import LlamaModel

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
    """Remove the newest `count` positions from a cache (negative `crop` means this in every release)."""
    if count > 0:
        cache.crop(-count)
