"""The `compiled` backend: static KV caches + torch.compile of each decode step, where the arm's shapes allow.

An arm whose decode step has no static shapes, or a machine where torch.compile cannot run, runs eager and
says why in its record's `engine_note` (see backends/step.py::compiled_engine).
"""

from __future__ import annotations

from typing import Any

from otterbench.backends.spec import BackendSpec


def _create(arm: Any, device: Any) -> Any:
    from otterbench.backends.step import compiled_engine

    return compiled_engine(arm, device, SPEC.name)


SPEC = BackendSpec(
    "compiled",
    "step",
    "static KV cache + torch.compile where shapes allow (eager with a note elsewhere)",
    _create,
    origin=__name__,
)
