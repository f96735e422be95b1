"""Quality of the guided ARGS arms with distilled weights, on the held-out prompts, free-running.

Each arm decodes the held-out prompts on its own (greedy, exactly N tokens): `base`, `args-faithful` (the
separate reward model: ARGS's own decisions, the reference), `args-token` (the distilled token-level reward
model) and `otter-args` (the distilled insertion). Per arm: `agreement_with_args` (fraction of generated
tokens equal, position by position, to ARGS's) and `mean_reward` (the reward model's score of
`prompt + generated`, averaged over prompts). Written to quality.json by `otterbench distill`; the report's
quality section is rebuilt from that file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import torch

from otterbench.arms import build_arm
from otterbench.arms.registry import ARMS
from otterbench.backends import DEFAULT_BACKEND, refusal
from otterbench.workload import Workload

TASK = "args"


def quality_arms() -> tuple[str, ...]:
    """base and the ARGS arms that decide differently in kind (an arm that `decides_as` another makes that
    arm's decisions), among those transformers runs (the quality pass decodes them step by step)."""
    return tuple(
        spec.name
        for spec in ARMS.values()
        if spec.task in (None, TASK) and spec.decides_as is None and refusal(DEFAULT_BACKEND, spec) is None
    )


def token_arm() -> str:
    """The ARGS arm the token-level student decodes in (the one that loads a token_reward_model)."""
    return next(
        spec.name for spec in ARMS.values() if spec.task == TASK and "token_reward_model" in spec.needs
    )


def reference_arm() -> str:
    """The ARGS arm as its reference code decides: the one every other arm's agreement is measured against."""
    return next(spec.name for spec in ARMS.values() if spec.task == TASK and spec.baseline == "faithful")


@torch.inference_mode()
def sequence_rewards(reward_model: Any, sequences: Sequence[Sequence[int]], device: Any) -> list[float]:
    """The reward model's score of each whole sequence (unpadded, one at a time: no pad-id pooling issue)."""
    return [
        float(reward_model(input_ids=torch.tensor([list(seq)], device=device)).logits.float().item())
        for seq in sequences
    ]


def _agreement(tokens: list[list[int]], reference: list[list[int]]) -> float:
    pairs = [(a, b) for row, ref in zip(tokens, reference) for a, b in zip(row, ref)]
    return sum(a == b for a, b in pairs) / len(pairs)


def measure_quality(
    models: Any, otter: Any, token_reward_model: Any, workload: Workload, rows: Sequence[int], device: Any
) -> dict[str, Any]:
    """Free-running agreement with ARGS and mean reward of each guided arm on the prompts `rows`."""
    held_out = dataclasses.replace(workload, prompt_ids=tuple(workload.prompt_ids[i] for i in rows))
    arm_models = SimpleNamespace(
        base=models.base, reward_model=models.reward_model, token_reward_model=token_reward_model
    )
    outputs = {
        name: build_arm(name, arm_models, otter).run(held_out, device).token_ids for name in quality_arms()
    }
    reference = outputs[reference_arm()]
    arms = []
    for name, tokens in outputs.items():
        sequences = [list(p) + row for p, row in zip(held_out.prompt_ids, tokens)]
        rewards = sequence_rewards(models.reward_model, sequences, device)
        arms.append(
            {
                "arm": name,
                "agreement_with_args": _agreement(tokens, reference),
                "mean_reward": sum(rewards) / len(rewards),
                "teacher_forced_agreement": None,  # filled by distill for the distilled students
            }
        )
    return {
        "task": "args",
        "reference_arm": reference_arm(),
        "weights": "distilled",
        "held_out_prompts": held_out.num_prompts,
        "max_new_tokens": held_out.max_new_tokens,
        "k": held_out.k,
        "weight": float(held_out.weight),
        "arms": arms,
    }
