"""The one table of floating-point types otterbench runs in: names, aliases, bytes per element, torch dtype.

Importing this module does not import torch (the CLI validates options before it loads anything heavy).
"""

from __future__ import annotations

from typing import Any

# canonical name -> bytes per element; the order is the order help texts list them in
DTYPE_BYTES: dict[str, int] = {"float32": 4, "bfloat16": 2, "float16": 2}
DTYPE_NAMES: tuple[str, ...] = tuple(DTYPE_BYTES)
_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def canonical_dtype(name: Any) -> str:
    """The canonical name of a dtype given as a name, an alias (fp32/bf16/fp16) or a torch dtype."""
    text = str(name).strip().lower().removeprefix("torch.")
    text = _ALIASES.get(text, text)
    if text not in DTYPE_BYTES:
        raise ValueError(f"dtype={name!r} is not supported: use one of {', '.join(DTYPE_NAMES)}")
    return text


def torch_dtype(name: Any, device_type: str | None = None) -> Any:
    """The torch dtype for `name`; float16 is refused on CPU (slow or unsupported there)."""
    import torch

    if isinstance(name, torch.dtype):
        name = str(name)
    canonical = canonical_dtype(name)
    if canonical == "float16" and device_type == "cpu":
        raise ValueError(f"dtype={name!r} is slow or unsupported on CPU: use float32 or bfloat16 there")
    return getattr(torch, canonical)
