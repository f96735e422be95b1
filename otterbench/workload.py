"""The matched workload: one object, built once from a seed, handed to every arm.

Every arm reads the same prompt token ids, batch size, N new tokens and task knobs (ARGS k and w, DExperts
alpha and filter_p, the draft length: each declared once by its task rule in `otterbench/arms/`) from here, so
two arms can only differ in how they decode, never in what they are asked to decode.

A base module: it knows no arm. The knobs are a plain mapping read as attributes (`workload.k`); their
defaults and checks belong to the rules that declare them (`otterbench.knobs.knob_problems`).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from otterbench.knobs import KnobAttributes, knob_kwargs


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


@knob_kwargs
@dataclass(frozen=True)
class Workload(KnobAttributes):
    """Prompts as token ids plus every decoding knob the arms share (validated on construction)."""

    prompt_ids: tuple[tuple[int, ...], ...]
    batch_size: int
    max_new_tokens: int  # N: every arm generates exactly N tokens per prompt, no early stop
    vocab_size: int
    pad_token_id: int
    seed: int = 0
    knobs: Mapping[str, Any] = field(default_factory=dict)  # the arms' task knobs: name -> value

    def __post_init__(self) -> None:
        ids = tuple(tuple(int(t) for t in row) for row in self.prompt_ids)
        object.__setattr__(self, "prompt_ids", ids)
        object.__setattr__(self, "knobs", dict(sorted(self.knobs.items())))
        _require(len(ids) > 0, "prompts", [], "give at least one prompt")
        empty = [i for i, row in enumerate(ids) if not row]
        _require(not empty, "prompts", f"empty at {empty}", "every prompt needs at least one token")
        _require(
            _is_int(self.vocab_size) and self.vocab_size >= 1, "vocab_size", self.vocab_size, "need >= 1"
        )
        _require(_is_int(self.batch_size) and self.batch_size >= 1, "batch_size", self.batch_size, "use >= 1")
        n = self.max_new_tokens
        _require(_is_int(n) and n >= 1, "max_new_tokens", n, "generate at least 1 token (N >= 1)")
        _require(_is_int(self.seed) and self.seed >= 0, "seed", self.seed, "use an integer >= 0")
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
        """Everything that defines the workload, as plain JSON-able data (the knobs flat beside the rest)."""
        return {
            "prompt_ids": [list(row) for row in self.prompt_ids],
            "batch_size": self.batch_size,
            "max_new_tokens": self.max_new_tokens,
            "vocab_size": self.vocab_size,
            "pad_token_id": self.pad_token_id,
            "seed": self.seed,
            **self.knobs,
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
    seed: int = 0,
    num_prompts: int | None = None,
    knobs: Mapping[str, Any] | None = None,
    **named_knobs: Any,
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
        seed=seed,
        knobs={**(knobs or {}), **named_knobs},
    )
