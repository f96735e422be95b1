"""The teacher signal a student (Otter's insertion or a token-level reward model) is distilled from.

A task's `TaskSpec.teacher` (otterbench/arms/units/) points here: collecting it is decoding the task's
separate arm and recording what its models said, so it lives with the arms; `distill` only trains on it.

Collected once, in inference mode, along the teacher's own greedy trajectory:
- ARGS: at every step the top-k candidates of the base logits and the reward model's reward of
  `prefix + candidate` (the trajectory is the ARGS one, so training sees the prefixes ARGS decides on).
- DExperts: at every step the full `expert - anti-expert` logits and the base's top-p nucleus (`filter_p`,
  the tokens the decision can pick), along the DExperts trajectory with that filter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from otterbench.arms.base import Tally
from otterbench.arms.decoding import CachedLM, args_choice, greedy
from otterbench.arms.dexperts import nucleus_filter, steer
from otterbench.arms.shared_prefix import SharedPrefixRewardScorer
from otterbench.workload import Batch, Workload


@dataclass
class Teacher:
    """What the separate model(s) said along their own trajectory, for n prompts and N steps."""

    task: str
    sequences: list[list[int]]  # prompt + N generated tokens, unpadded
    candidates: torch.Tensor  # [n,N,k] top-k token ids of the base logits at each step
    chosen: torch.Tensor  # [n,N] the teacher's token at each step
    target: torch.Tensor  # ARGS: rewards [n,N,k]; DExperts: expert - anti logits [n,N,V]
    keep: torch.Tensor | None = None  # DExperts: [n,N,V] bool, the base's top-p nucleus (pickable tokens)
    per_candidate: bool = False  # target scores the k candidates (ARGS), not the whole vocabulary

    def subset(self, rows: Sequence[int]) -> Teacher:
        """The teacher restricted to prompts `rows`, in that order."""
        index = torch.as_tensor(list(rows), dtype=torch.long)
        return Teacher(
            self.task,
            [self.sequences[i] for i in rows],
            self.candidates[index],
            self.chosen[index],
            self.target[index],
            None if self.keep is None else self.keep[index],
            self.per_candidate,
        )


def _args_batch(models: Any, batch: Batch, workload: Workload) -> tuple[list, list, list]:
    """One batch of ARGS decoding: (tokens, candidates, rewards) per step."""
    tally = Tally()
    lm, scorer = CachedLM(models.base, "llm", tally), SharedPrefixRewardScorer(models.reward_model, tally)
    scorer.start(batch, workload)
    out, tokens, cands, rewards = lm.start(batch), [], [], []

    def rewards_of(candidates: torch.Tensor) -> torch.Tensor:
        cands.append(candidates)
        rewards.append(scorer.score(candidates).float())
        return rewards[-1]

    for step in range(workload.max_new_tokens):
        if step:
            out = lm.feed(tokens[-1])
        token, pick = args_choice(out.logits[:, -1], workload.k, workload.weight, rewards_of)
        tokens.append(token)
        if step + 1 < workload.max_new_tokens:
            scorer.keep(pick)
    return tokens, cands, rewards


@torch.inference_mode()
def collect_args_teacher(models: Any, workload: Workload, device: torch.device | str) -> Teacher:
    """Follow ARGS (shared-prefix reward model, the arms' decisions) and record candidates and rewards."""
    records: dict = {"cand": [], "reward": [], "chosen": [], "seq": [], "keep": []}
    for batch in workload.batches(device):
        _append(records, batch.prompt_indices, workload, *_args_batch(models, batch, workload))
    return _teacher("args", records, per_candidate=True)


@torch.inference_mode()
def collect_dexperts_teacher(models: Any, workload: Workload, device: torch.device | str) -> Teacher:
    """Follow DExperts (cached, filtered) and record the expert - anti-expert logits and the nucleus."""
    tally, records = Tally(), {"cand": [], "reward": [], "chosen": [], "seq": [], "keep": []}
    roles = (("base", "llm"), ("expert", "expert"), ("anti_expert", "anti_expert"))
    for batch in workload.batches(device):
        lms = [CachedLM(getattr(models, attr), role, tally) for attr, role in roles]
        tokens, cands, diffs, keep = [], [], [], []
        for step in range(workload.max_new_tokens):
            base, expert, anti = (
                (lm.feed(tokens[-1]) if step else lm.start(batch)).logits[:, -1].float() for lm in lms
            )
            cands.append(base.topk(workload.k, dim=-1).indices)
            diffs.append(expert - anti)
            keep.append(torch.isfinite(nucleus_filter(base, workload.filter_p)))
            tokens.append(greedy(steer(base, expert, anti, workload.alpha, workload.filter_p)))
        records["keep"].append(torch.stack(keep, dim=1).cpu())  # [B,N,V]
        _append(records, batch.prompt_indices, workload, tokens, cands, diffs)
    return _teacher("dexperts", records)


def _append(
    records: dict, indices: Sequence[int], workload: Workload, tokens: list, cands: list, targets: list
) -> None:
    generated = torch.cat(tokens, dim=1).cpu()  # [B,N]
    records["chosen"].append(generated)
    records["cand"].append(torch.stack(cands, dim=1).cpu())  # [B,N,k]
    records["reward"].append(torch.stack(targets, dim=1).cpu())  # [B,N,k] or [B,N,V]
    for row, index in enumerate(indices):
        records["seq"].append(list(workload.prompt_ids[index]) + generated[row].tolist())


def _teacher(task: str, records: dict, per_candidate: bool = False) -> Teacher:
    # clone() outside inference mode: autograd may save these tensors as loss targets
    return Teacher(
        task,
        records["seq"],
        torch.cat(records["cand"]).clone(),
        torch.cat(records["chosen"]).clone(),
        torch.cat(records["reward"]).clone(),
        torch.cat(records["keep"]).clone() if records["keep"] else None,
        per_candidate,
    )
