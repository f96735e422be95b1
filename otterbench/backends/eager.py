"""The `eager` backend: transformers as it runs out of the box, one arm-driven step at a time."""

from __future__ import annotations

from typing import Any

from otterbench.backends.spec import EAGER_ENGINE, BackendSpec


def _create(arm: Any, device: Any) -> Any:
    from otterbench.backends.step import EAGER

    return EAGER  # eager engines keep no state, so arms share one


SPEC = BackendSpec(
    EAGER_ENGINE,
    "step",
    "transformers as is: a growing KV cache, every op from Python",
    _create,
    origin=__name__,
)
