"""How far one model's logits are from another's, measured, not assumed: one batch (`measure_disruption`) or a
running comparison over many (`RunningDeviation`, used by the run's non-disruption check and its yardstick)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class Disruption:
    """max |Δlogit| over real (unmasked) positions, and the fraction of them whose argmax agrees."""

    max_abs_logit_diff: float
    argmax_agreement: float
    exact: bool  # torch.equal on every real position
    positions: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.inference_mode()
def measure_disruption(
    base_model: nn.Module,
    otter_like: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
) -> Disruption:
    """Run both models on the same batch and compare their logits position by position."""
    base_logits = base_model(input_ids=input_ids, attention_mask=attention_mask).logits
    otter_logits = otter_like(input_ids=input_ids, attention_mask=attention_mask).logits
    real = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
    a, b = base_logits[real].float(), otter_logits[real].float()
    return Disruption(
        max_abs_logit_diff=float((a - b).abs().max()) if a.numel() else 0.0,
        argmax_agreement=float((a.argmax(-1) == b.argmax(-1)).float().mean()) if a.numel() else 1.0,
        exact=bool(torch.equal(base_logits[real], otter_logits[real])),
        positions=int(real.sum()),
    )


@dataclass
class RunningDeviation:
    """Running comparison of logits: worst |Δ|, argmax agreements, and whether all were torch.equal."""

    max_abs: float = 0.0
    agree: int = 0
    positions: int = 0
    exact: bool = True

    def add(self, reference: torch.Tensor, other: torch.Tensor) -> None:
        """Compare logits [n, V] of the same n positions."""
        if reference.numel() == 0:
            return
        self.exact = self.exact and bool(torch.equal(reference, other))
        self.max_abs = max(self.max_abs, float((reference.float() - other.float()).abs().max()))
        self.agree += int((reference.argmax(-1) == other.argmax(-1)).sum())
        self.positions += reference.shape[0]

    def merge(self, other: RunningDeviation) -> None:
        """Fold another comparison's positions into this one."""
        self.exact = self.exact and other.exact
        self.max_abs = max(self.max_abs, other.max_abs)
        self.agree, self.positions = self.agree + other.agree, self.positions + other.positions

    def to_dict(self) -> dict[str, Any]:
        """exact, max_abs_logit_diff, argmax_agreement (1.0 over no positions), positions."""
        agreement = self.agree / self.positions if self.positions else 1.0
        return {
            "exact": self.exact,
            "max_abs_logit_diff": self.max_abs,
            "argmax_agreement": agreement,
            "positions": self.positions,
        }
