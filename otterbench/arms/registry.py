"""The arm names every part of otterbench agrees on, and each arm's role in a savings comparison."""

from __future__ import annotations

# role: "base" (the LLM alone), "separate" (LLM + separate model(s)), "otter" (the inserted LLM)
ARM_ROLES: dict[str, str] = {
    "base": "base",
    "args-faithful": "separate",
    "args-optimized": "separate",
    "otter-args": "otter",
    "dexperts-faithful": "separate",
    "dexperts-cached": "separate",
    "otter-dexperts": "otter",
}
ARM_NAMES: tuple[str, ...] = tuple(ARM_ROLES)

# which Otter arm answers which separate-model arm in the savings table
OTTER_COUNTERPART: dict[str, str] = {
    "args-faithful": "otter-args",
    "args-optimized": "otter-args",
    "dexperts-faithful": "otter-dexperts",
    "dexperts-cached": "otter-dexperts",
}
