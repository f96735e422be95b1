"""The reference arm of a results file: the arm every extra cost is measured from, found by its recorded role.

Each arm entry of results.json records its role (schema `$defs/arm`), so a reader needs no registry and no
arm name to find the reference; files written without roles are read here, once: their arm named "base".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from otterbench.arms.spec import REFERENCE_ROLE


def reference_name(arms: Iterable[dict] | Mapping[str, dict]) -> str | None:
    """The name of the arm every extra is measured from: the arm recorded with the reference role (the one
    place a file without roles is read: its arm named "base"); None when the run has none."""
    entries = arms.values() if isinstance(arms, Mapping) else arms
    for arm in entries:
        if arm.get("role", REFERENCE_ROLE if arm["name"] == "base" else None) == REFERENCE_ROLE:
            return arm["name"]
    return None


def reference_arm(arms: Mapping[str, dict]) -> dict | None:
    """The reference arm's entry in an arms-by-name mapping (see `reference_name`)."""
    name = reference_name(arms)
    return None if name is None else arms[name]
