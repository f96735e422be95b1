"""measure_disruption: how far an Otter model's logits are from the base model's, measured, not assumed."""

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
