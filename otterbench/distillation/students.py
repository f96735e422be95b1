"""What distillation trains: a student gives the base logits and a signal at every decision position.

- `OtterStudent`: Otter's inserted parameters (base frozen); one forward gives `.logits` and `.signal`.
- `TokenRewardStudent`: a separate token-level reward model (the args-token arm's scorer, every parameter
  trainable); its next-token logits are the signal, the frozen base gives the logits.
Both are trained on the same teacher, loss, steps and minibatches, so their quality compares on equal terms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch

from otterbench.workload import positions_from_mask


class Student(Protocol):
    """A model being distilled: its forward over full sequences and its trainable parameters."""

    def outputs(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(base logits, signal), each [B,T,V]."""
        ...

    def trainable(self) -> list[torch.nn.Parameter]: ...


class OtterStudent:
    """Otter's insertion: only the inserted parameters train."""

    def __init__(self, otter: Any) -> None:
        self.otter = otter

    def outputs(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.otter(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=positions_from_mask(attention_mask),
        )
        return out.logits, out.signal

    def trainable(self) -> list[torch.nn.Parameter]:
        return [p for p in self.otter.parameters() if p.requires_grad]


class TokenRewardStudent:
    """A separate causal LM read as a reward for every next token; the base (frozen) gives the logits."""

    def __init__(self, base: Any, token_reward_model: Any) -> None:
        self.base = base
        self.model = token_reward_model.requires_grad_(True)

    def outputs(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        positions = positions_from_mask(attention_mask)
        with torch.no_grad():
            logits = self.base(
                input_ids=input_ids, attention_mask=attention_mask, position_ids=positions
            ).logits
        signal = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions).logits
        return logits, signal

    def trainable(self) -> list[torch.nn.Parameter]:
        return list(self.model.parameters())


def fit(
    parameters: Any,
    rows: int,
    loss_of: Callable[[list[int]], torch.Tensor],
    *,
    steps: int,
    lr: float,
    seed: int,
    batch_size: int,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Adam on `parameters` over `steps` seeded minibatches of `rows` (the same batches for every student
    given the same seed); `loss_of(batch rows)` is one step's loss. Returns each step's loss."""
    optimizer = torch.optim.Adam(parameters, lr=lr)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for step in range(steps):
        loss = loss_of(torch.randperm(rows, generator=generator)[:batch_size].tolist())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if on_step is not None:
            on_step(step + 1, losses[-1])
    return losses


def left_pad(sequences: list[list[int]], pad_id: int, device: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask [B,W] of `sequences`, left-padded to the longest (W)."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, seq in enumerate(sequences):
        ids[row, width - len(seq) :] = torch.tensor(seq)
        mask[row, width - len(seq) :] = 1
    return ids.to(device), mask.to(device)


def step_outputs(student: Student, sequences: list[list[int]], steps: int, pad_id: int, device: Any) -> Any:
    """Logits and signal [B,N,V] at the N decision positions of full sequences, in one uncached forward."""
    width = max(len(s) for s in sequences)
    logits, signal = student.outputs(*left_pad(sequences, pad_id, device))
    # left padding puts every sequence's end at column width-1; decision t reads the column before token t
    window = slice(width - steps - 1, width - 1)
    return logits[:, window].float(), signal[:, window].float()
