"""The inference-acceleration arms: greedy speculative decoding whose output is the base's own greedy output.

- `spec-separate`: a separate small draft model proposes `draft_length` tokens greedily (one draft forward
  each), then ONE base forward over `[last token, d1..dγ]` verifies them all: the longest prefix the base
  would have chosen itself is kept, plus the base's own next token (the correction, or a bonus after a full
  accept). This is transformers' greedy assisted generation with a constant number of draft tokens.
- `otter-spec`: the Otter-inserted base drafts with its signal: the vocab-sized signal at position t scores
  token t+2 (the token after the base's next one). Each forward feeds `[last token, draft]`: the logits at the
  last token verify the draft; if it holds, the logits at the draft give one more token and the signal there
  the next draft, else the signal at the last token does (its target, t+2, is still the next unknown token).
  So one forward yields 1 or 2 tokens and no draft model runs at all.

Rows are decoded one at a time, each on its own croppable KV cache (rows accept different numbers of drafts,
so a batch would need per-row cache lengths); the accel suite therefore runs every arm at batch_size = 1.
Every arm still generates exactly N tokens: the draft is shortened so that a full accept never overshoots.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any

import torch

from otterbench.arms.base import Arm, ArmOutput, StepObserver, Tally
from otterbench.compat import cache_kwargs, drop_last_tokens, output_cache
from otterbench.otter import FusedOtterModel, OtterCache, OtterModel
from otterbench.workload import Batch, Workload

OTTER_DRAFT_LENGTH = 1  # one signal head: one drafted token per forward


@dataclass
class SpeculationCounts:
    """Draft counters of one run: per draft position, tokens proposed and accepted; verifying forwards."""

    draft_length: int
    proposed: list[int] = field(default_factory=list)  # [γ] drafts made at position i (1-based i+1)
    accepted: list[int] = field(default_factory=list)  # [γ] of those, kept (every earlier draft kept too)
    verify_forwards: int = 0  # forwards of the deciding model after the prefill (each verifies a draft)

    def __post_init__(self) -> None:
        self.proposed = self.proposed or [0] * self.draft_length
        self.accepted = self.accepted or [0] * self.draft_length

    def record(self, drafted: int, kept: int) -> None:
        """One verifying forward that checked `drafted` draft tokens and kept the first `kept`."""
        self.verify_forwards += 1
        for position in range(drafted):
            self.proposed[position] += 1
            self.accepted[position] += int(position < kept)

    def to_dict(self) -> dict[str, Any]:
        return {
            "draft_length": self.draft_length,
            "proposed_by_position": list(self.proposed),
            "accepted_by_position": list(self.accepted),
            "verify_forwards": self.verify_forwards,
        }


class RowLM:
    """One causal LM (transformers model or Otter) over one unpadded row, with a KV cache that can be cut back."""

    def __init__(self, model: Any, role: str, tally: Tally, device: torch.device | str) -> None:
        self.model, self.role, self.tally, self.device = model, role, tally, device
        self.is_otter = isinstance(model, (OtterModel, FusedOtterModel))
        self.cache: Any = None
        self.length = 0  # positions held in the cache

    def feed(self, tokens: list[int]) -> Any:
        """Append `tokens` and run one cached forward over them; outputs have T = len(tokens) positions."""
        ids = torch.tensor([tokens], dtype=torch.long, device=self.device)  # [1,T]
        end = self.length + len(tokens)
        # an all-ones mask and explicit positions, exactly as the base arm gives an unpadded row
        mask = torch.ones((1, end), dtype=torch.long, device=self.device)
        positions = torch.arange(self.length, end, device=self.device)[None]
        cache = {"past_key_values": self.cache} if self.is_otter else cache_kwargs(self.cache)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **cache)
        self.cache = out.past_key_values if self.is_otter else output_cache(out)
        self.length = end
        self.tally.call(self.role)
        return out

    def crop(self, length: int) -> None:
        """Keep only the first `length` cached positions (rejected drafts leave the cache)."""
        if isinstance(self.cache, OtterCache):
            self.cache.drop_last_tokens(self.length - length)
        else:
            drop_last_tokens(self.cache, self.length - length)
        self.length = length


def _argmax(scores: torch.Tensor) -> list[int]:
    """Greedy ids of [T,V] scores as host ints (the accept test needs them on the host)."""
    return scores.argmax(dim=-1).tolist()


def _kept(drafts: list[int], picks: list[int]) -> int:
    """How many leading drafts equal the base's own picks."""
    kept = 0
    while kept < len(drafts) and drafts[kept] == picks[kept]:
        kept += 1
    return kept


class SpeculativeArm(Arm):
    """Shared run loop: rows one at a time, counters of drafts proposed and accepted per position."""

    counts: SpeculationCounts
    # verifying drafts feeds a varying number of tokens and cuts rejected ones from the cache
    not_static = "speculative decoding verifies variable-length drafts and cuts the cache back: runs eager"

    @abstractmethod
    def draft_length(self, workload: Workload) -> int:
        """Tokens drafted per verifying forward at most."""

    def run(
        self, workload: Workload, device: torch.device | str, observer: StepObserver | None = None
    ) -> ArmOutput:
        """Arm.run, plus the draft counters of this run in `ArmOutput.speculation`."""
        self.counts = SpeculationCounts(self.draft_length(workload))
        output = super().run(workload, device, observer)
        output.speculation = {**self.counts.to_dict(), "new_tokens": output.new_tokens}
        return output

    def generate_batch(
        self, batch: Batch, workload: Workload, observer: StepObserver, tally: Tally
    ) -> torch.Tensor:
        rows = []
        for ids, mask in zip(batch.input_ids, batch.attention_mask):
            prompt = ids[mask.bool()].tolist()  # the row without its left padding
            rows.append(self.generate_row(prompt, workload, observer, tally, ids.device))
        return torch.tensor(rows, dtype=torch.long, device=batch.input_ids.device)  # [B,N]

    @abstractmethod
    def generate_row(
        self, prompt: list[int], workload: Workload, observer: StepObserver, tally: Tally, device: Any
    ) -> list[int]:
        """Exactly workload.max_new_tokens greedy tokens after one unpadded prompt."""


class SeparateDraftArm(SpeculativeArm):
    """`spec-separate`: a separate draft model proposes, one base forward verifies."""

    name = "spec-separate"

    def __init__(self, llm: Any, draft: Any) -> None:
        self.llm, self.draft = llm, draft

    def draft_length(self, workload: Workload) -> int:
        return workload.draft_length

    def _propose(self, draft: RowLM, sequence: list[int], count: int) -> list[int]:
        """`count` greedy draft tokens after `sequence`, feeding the draft what it has not seen yet."""
        proposed: list[int] = []
        pending = sequence[draft.length :]
        for _ in range(count):
            proposed += _argmax(draft.feed(pending).logits[0, -1:])
            pending = proposed[-1:]
        return proposed

    def generate_row(
        self, prompt: list[int], workload: Workload, observer: StepObserver, tally: Tally, device: Any
    ) -> list[int]:
        base, draft = RowLM(self.llm, "llm", tally, device), RowLM(self.draft, "draft", tally, device)
        sequence = prompt + _argmax(base.feed(prompt).logits[0, -1:])  # the last token is not fed yet
        observer.end_step()
        draft.feed(prompt)  # the draft's prefill; the base has already chosen the first token
        end = len(prompt) + workload.max_new_tokens
        while len(sequence) < end:
            count = min(workload.draft_length, end - len(sequence) - 1)  # a full accept lands on N exactly
            drafts = self._propose(draft, sequence, count)
            picks = _argmax(base.feed(sequence[-1:] + drafts).logits[0])  # [count+1] the base's own choices
            kept = _kept(drafts, picks)
            self.counts.record(count, kept)
            base.crop(len(sequence) + kept)  # the confirmed tokens stay; the newest pick is not fed yet
            draft.crop(min(draft.length, len(sequence) + kept))
            sequence += picks[: kept + 1]  # the kept drafts equal picks[:kept]; picks[kept] is the base's own
            for _ in range(kept + 1):
                observer.end_step()
        return sequence[len(prompt) :]


class OtterDraftArm(SpeculativeArm):
    """`otter-spec`: the inserted signal drafts token t+2; each forward verifies one draft and makes the next."""

    name = "otter-spec"

    def __init__(self, otter: Any) -> None:
        self.otter = otter

    def draft_length(self, workload: Workload) -> int:
        return OTTER_DRAFT_LENGTH

    def generate_row(
        self, prompt: list[int], workload: Workload, observer: StepObserver, tally: Tally, device: Any
    ) -> list[int]:
        lm = RowLM(self.otter, "otter", tally, device)
        out = lm.feed(prompt)
        sequence = prompt + _argmax(out.logits[0, -1:])  # the last token is not fed yet
        draft = _argmax(out.signal[0, -1:])  # the signal at the last prompt token scores token t+2
        observer.end_step()
        end = len(prompt) + workload.max_new_tokens
        while len(sequence) < end:
            drafts = draft if end - len(sequence) >= 2 else []  # no room for draft + bonus: plain step
            out = lm.feed(sequence[-1:] + drafts)
            picks = _argmax(out.logits[0])  # [T] the base's own choices
            kept = _kept(drafts, picks)
            self.counts.record(len(drafts), kept)
            lm.crop(len(sequence) + kept)  # a rejected draft leaves the cache
            sequence += picks[: kept + 1]
            draft = _argmax(out.signal[0, kept : kept + 1])  # the signal where the newest token was decided
            for _ in range(kept + 1):
                observer.end_step()
        return sequence[len(prompt) :]
