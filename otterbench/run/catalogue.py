"""The model catalogue of a run: every role it loads -> source, config, fingerprint, read once in resolve.

Preflight reads each model's config (without weights) into the catalogue while it checks them; resolve hands
the same catalogue to the fused checkpoint's cache key, the planner's prediction, the results' model
fingerprints and each arm's job (its models' sources), so no model is read twice or resolved two ways.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from otterbench.models.sources import TINY
from otterbench.models.tiny import tiny_seed


@dataclass(frozen=True)
class ModelEntry:
    """One role of the run: where its model comes from and what it is, without its weights."""

    role: str
    source: str  # "tiny", a hub id or a local path
    config: Any  # its transformers config (the tiny profile's built from code)

    @property
    def fingerprint(self) -> str:
        """A short hash naming the model without loading its weights: its source and architecture config."""
        if self.source == TINY:
            payload: dict[str, Any] = {"source": TINY, "role": self.role, "seed": tiny_seed(self.role)}
        else:
            payload = {"source": self.source, "config": self.config.to_diff_dict()}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Catalogue:
    """role -> ModelEntry for every model a run loads (the base first)."""

    entries: dict[str, ModelEntry] = field(default_factory=dict)

    def __getitem__(self, role: str) -> ModelEntry:
        return self.entries[role]

    def sources(self, roles: Any = None) -> dict[str, str]:
        """role -> source, of `roles` (default: every role)."""
        return {role: entry.source for role, entry in self.entries.items() if roles is None or role in roles}

    def fingerprints(self) -> dict[str, str]:
        """role -> fingerprint, roles sorted (results.json's workload.model_fingerprints)."""
        return {role: self.entries[role].fingerprint for role in sorted(self.entries)}
