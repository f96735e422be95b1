"""What an Otter forward returns, in either layout."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class OtterOutput:
    """logits: the base model's [B,T,V]; signal: [B,T,V] ("vocab") or [B,T,1] ("scalar")."""

    logits: torch.Tensor
    signal: torch.Tensor
    past_key_values: Any = None
