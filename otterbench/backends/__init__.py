"""Decode backends: what runs an arm's models. One registry, two kinds (see backends/spec.py).

Built in: `eager` (transformers as it runs out of the box) and `compiled` (static KV cache + torch.compile,
falling back to eager with a note where it cannot). A new backend is one module exporting `SPEC` plus its
name in `BUILT_IN` (or a `register_backend(SPEC)` call from a plugin). Torch-free.
"""

from __future__ import annotations

import importlib
from typing import Any

from otterbench.backends.spec import (
    STATIC_ENGINE,
    BackendSettings,
    BackendSpec,
    GenerateBackend,
    GenerateOutput,
    ModelSources,
)
from otterbench.otter.spec import LAYOUTS

BUILT_IN = ("eager", "compiled", "vllm")  # modules of this package exporting SPEC, in registry order
DEFAULT_BACKEND = BackendSettings().name
BACKENDS: dict[str, BackendSpec] = {}

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "STATIC_ENGINE",
    "BackendSettings",
    "BackendSpec",
    "GenerateBackend",
    "GenerateOutput",
    "ModelSources",
    "backend_names",
    "backend_spec",
    "register_backend",
    "refusal",
]


def register_backend(spec: BackendSpec) -> BackendSpec:
    """Add a backend; its name must be new."""
    if spec.name in BACKENDS:
        raise ValueError(f"backend {spec.name!r} is already registered (by {BACKENDS[spec.name].origin})")
    unknown = [layout for layout in spec.layouts if layout not in LAYOUTS]
    if not spec.layouts or unknown:
        raise ValueError(f"backend {spec.name!r} layouts={spec.layouts!r}: name one or more of {LAYOUTS}")
    BACKENDS[spec.name] = spec
    return spec


def unregister_backend(name: str) -> None:
    """Remove a backend registered by `register_backend` (tests use it to clean up)."""
    BACKENDS.pop(name, None)


for _module in BUILT_IN:
    register_backend(importlib.import_module(f"otterbench.backends.{_module}").SPEC)


def backend_names() -> tuple[str, ...]:
    """Every registered backend, in registry order."""
    return tuple(BACKENDS)


def backend_spec(name: str, origin: str = "") -> BackendSpec:
    """The backend called `name` (importing `origin` first in a fresh process); unknown names raise ValueError."""
    if name not in BACKENDS and origin:
        importlib.import_module(origin)
    if name not in BACKENDS:
        raise ValueError(f"engine={name!r} is unknown: choose {' or '.join(BACKENDS)}")
    return BACKENDS[name]


def refusal(backend: str, arm: Any) -> str | None:
    """Why backend `backend` cannot run `arm` (an ArmSpec), as the one line preflight prints, or None."""
    spec = backend_spec(backend)
    if arm.backends is not None and backend not in arm.backends:
        why = f"arm {arm.name} runs only under {', '.join(arm.backends)}"
    elif arm.engine_loop is not None and arm.backends is not None and spec.kind == "generate":
        why = None  # the arm brings its own loop for the backends it names (ArmSpec.engine_loop)
    else:
        why = spec.refuses(arm)
    return f"--engine={backend!r} cannot run arm {arm.name}: {why}" if why else None
