"""The matched workload: one object, built once from a seed, handed to every arm.

Every arm reads the same prompt token ids, batch size, N new tokens, k, ARGS weight w, DExperts alpha and filter_p from
here, so two arms can only differ in how they decode, never in what they are asked to decode.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch


def _require(ok: bool, field: str, value: Any, fix: str) -> None:
    if not ok:
        raise ValueError(f"workload {field}={value!r} is invalid: {fix}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids of a left-padded batch: 0 at each row's first real token (pads get 0, they are masked)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


@dataclass(frozen=True)
class Batch:
    """One left-padded batch of prompts, on a device."""

    prompt_indices: tuple[int, ...]  # positions of these prompts in Workload.prompt_ids
    input_ids: torch.Tensor  # [B, P] long, left-padded with the pad id
    attention_mask: torch.Tensor  # [B, P] long, 0 on pads
    position_ids: torch.Tensor  # [B, P] long, from the mask


@dataclass(frozen=True)
class Workload:
    """Prompts as token ids plus every decoding knob the arms share (validated on construction)."""

    prompt_ids: tuple[tuple[int, ...], ...]
    batch_size: int
    max_new_tokens: int  # N: every arm generates exactly N tokens per prompt, no early stop
    vocab_size: int
    pad_token_id: int
    k: int = 10  # ARGS top-k candidates
    weight: float = 1.0  # ARGS w in logit + w*reward
    alpha: float = 2.0  # DExperts alpha in logits + alpha*(expert - anti)
    seed: int = 0
    draft_length: int = 3  # speculative decoding: tokens the separate draft model proposes per base forward
    filter_p: float = 0.9  # DExperts: top-p nucleus of the base logits kept before adding the experts' shift

    def __post_init__(self) -> None:
        ids = tuple(tuple(int(t) for t in row) for row in self.prompt_ids)
        object.__setattr__(self, "prompt_ids", ids)
        _require(len(ids) > 0, "prompts", [], "give at least one prompt")
        empty = [i for i, row in enumerate(ids) if not row]
        _require(not empty, "prompts", f"empty at {empty}", "every prompt needs at least one token")
        _require(
            _is_int(self.vocab_size) and self.vocab_size >= 1, "vocab_size", self.vocab_size, "need >= 1"
        )
        _require(_is_int(self.batch_size) and self.batch_size >= 1, "batch_size", self.batch_size, "use >= 1")
        n = self.max_new_tokens
        _require(_is_int(n) and n >= 1, "max_new_tokens", n, "generate at least 1 token (N >= 1)")
        k_ok = _is_int(self.k) and 1 <= self.k <= self.vocab_size
        _require(k_ok, "k", self.k, f"choose 1 <= k <= vocab size {self.vocab_size}")
        _require(_is_int(self.seed) and self.seed >= 0, "seed", self.seed, "use an integer >= 0")
        gamma = self.draft_length
        _require(_is_int(gamma) and gamma >= 1, "draft_length", gamma, "draft at least 1 token per forward")
        _require(0 < self.filter_p <= 1, "filter_p", self.filter_p, "choose 0 < filter_p <= 1 (1: no filter)")
        out_of_vocab = [t for row in ids for t in row if not 0 <= t < self.vocab_size]
        _require(not out_of_vocab, "prompt token", out_of_vocab[:1], f"ids must be in [0, {self.vocab_size})")

    @property
    def num_prompts(self) -> int:
        return len(self.prompt_ids)

    def batches(self, device: torch.device | str = "cpu") -> Iterator[Batch]:
        """Left-padded batches in prompt order (the last one may be smaller)."""
        for start in range(0, self.num_prompts, self.batch_size):
            rows = self.prompt_ids[start : start + self.batch_size]
            width = max(len(row) for row in rows)
            ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for i, row in enumerate(rows):
                ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
                mask[i, width - len(row) :] = 1
            ids, mask = ids.to(device), mask.to(device)
            indices = tuple(range(start, start + len(rows)))
            yield Batch(indices, ids, mask, positions_from_mask(mask))

    def to_dict(self) -> dict[str, Any]:
        """Everything that defines the workload, as plain JSON-able data."""
        return {
            "prompt_ids": [list(row) for row in self.prompt_ids],
            "batch_size": self.batch_size,
            "max_new_tokens": self.max_new_tokens,
            "vocab_size": self.vocab_size,
            "pad_token_id": self.pad_token_id,
            "k": self.k,
            "weight": float(self.weight),
            "alpha": float(self.alpha),
            "seed": self.seed,
            "draft_length": self.draft_length,
            "filter_p": float(self.filter_p),
        }

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON of `to_dict()`: equal fingerprints mean identical workloads."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


def build_workload(
    prompts: Sequence[str],
    tokenizer: Any,
    *,
    batch_size: int,
    max_new_tokens: int,
    k: int = 10,
    weight: float = 1.0,
    alpha: float = 2.0,
    seed: int = 0,
    num_prompts: int | None = None,
    draft_length: int = 3,
    filter_p: float = 0.9,
) -> Workload:
    """Tokenize the prompts once (a seeded subset of `num_prompts` when given) into the shared Workload."""
    _require(len(prompts) > 0, "prompts", [], "give at least one prompt")
    if num_prompts is not None:
        ok = _is_int(num_prompts) and 1 <= num_prompts <= len(prompts)
        _require(ok, "num_prompts", num_prompts, f"choose 1..{len(prompts)} (the prompts available)")
        chosen = sorted(random.Random(seed).sample(range(len(prompts)), num_prompts))
        prompts = [prompts[i] for i in chosen]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    _require(pad is not None, "pad_token_id", None, "give the tokenizer a pad or eos token")
    ids = [tokenizer(text, add_special_tokens=True)["input_ids"] for text in prompts]
    return Workload(
        prompt_ids=tuple(tuple(row) for row in ids),
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        vocab_size=len(tokenizer),
        pad_token_id=int(pad),
        k=k,
        weight=weight,
        alpha=alpha,
        seed=seed,
        draft_length=draft_length,
        filter_p=filter_p,
    )
