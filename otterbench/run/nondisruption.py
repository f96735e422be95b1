"""Non-disruption over the whole workload: Otter's logits against the base's, prompts and every decode step.

Run in the Otter arm's process after its memory phases close (a check, not serving). For every batch both
models prefill the prompt, then decode in lockstep on the base's greedy tokens with their own KV caches
(cached decode); a full uncached forward over prompt + generated tokens follows (full forward). The Otter
model is also decoded greedily on its own (`BaseArm` over it) and its token ids hashed, so the run can set
them against the base arm's measured `token_ids_hash`. Split layout: every comparison must be `torch.equal`.
Fused layout: the widened reductions may reorder float sums, so the deviation is measured and reported.
Beside it the base's own deviation under harmless changes (its yardstick, run/yardstick.py) is measured on
the same workload, and the parent judges Otter exact, within the base's numerics or disrupted
(results/disruption_verdict.py).
"""

from __future__ import annotations

from typing import Any

import torch

from otterbench.arms.base import Tally
from otterbench.arms.decoding import CachedLM, greedy, grow_mask
from otterbench.arms.greedy import BaseArm
from otterbench.otter.disruption import RunningDeviation
from otterbench.results.disruption_verdict import judge
from otterbench.run.record import token_ids_hash
from otterbench.run.yardstick import measure_yardstick
from otterbench.workload import Batch, Workload, positions_from_mask


def _lockstep(
    base: Any, otter: Any, batch: Batch, steps: int, prompt: RunningDeviation, decode: RunningDeviation
) -> torch.Tensor:
    """Prefill and `steps`-1 cached steps of both models on the base's greedy tokens; returns them [B, steps]."""
    tally = Tally()
    base_lm, otter_lm = CachedLM(base, "llm", tally), CachedLM(otter, "otter", tally)
    real = batch.attention_mask.bool()
    base_out = base_lm.start(batch, all_positions=True).logits  # [B, P, V]
    otter_out = otter_lm.start(batch, all_positions=True).logits
    prompt.add(base_out[real], otter_out[real])
    tokens = [greedy(base_out[:, -1])]
    for _ in range(steps - 1):
        base_step = base_lm.feed(tokens[-1]).logits[:, -1]  # [B, V]
        decode.add(base_step, otter_lm.feed(tokens[-1]).logits[:, -1])
        tokens.append(greedy(base_step))
    return torch.cat(tokens, dim=1)


def _full_forward(base: Any, otter: Any, batch: Batch, tokens: torch.Tensor, full: RunningDeviation) -> None:
    """One uncached forward of both models over prompt + generated tokens (the last one is never fed)."""
    fed = tokens[:, :-1]
    ids = torch.cat([batch.input_ids, fed], dim=1)  # [B, P+N-1]
    mask = grow_mask(batch.attention_mask, fed.shape[1])
    positions = positions_from_mask(mask)
    kwargs = {"input_ids": ids, "attention_mask": mask, "position_ids": positions, "use_cache": False}
    real = mask.bool()
    full.add(base(**kwargs).logits[real], otter(**kwargs).logits[real])


@torch.inference_mode()
def check_non_disruption(
    base: Any,
    otter_like: Any,
    workload: Workload,
    device: torch.device,
    layout: str,
    yardstick_engine: str = "compiled",
) -> dict[str, Any]:
    """Compare `otter_like` (any layout) with `base` over every batch and step of `workload`; beside it the
    base against itself (`yardstick_engine`: the engine the yardstick sets against eager)."""

    prompt, decode, full = RunningDeviation(), RunningDeviation(), RunningDeviation()
    base_tokens: list[list[int]] = []
    for batch in workload.batches(device):
        tokens = _lockstep(base, otter_like, batch, workload.max_new_tokens, prompt, decode)
        _full_forward(base, otter_like, batch, tokens, full)
        base_tokens.extend(tokens.tolist())
    otter_tokens = BaseArm(otter_like).run(workload, device).token_ids  # Otter's own greedy decode
    checks = {"prompt_logits": prompt, "cached_decode_logits": decode, "full_forward_logits": full}
    overall = RunningDeviation()
    for part in checks.values():
        overall.merge(part)
    return {
        "layout": layout,
        "scope": "whole workload",
        **overall.to_dict(),
        "checks": {name: part.to_dict() for name, part in checks.items()},
        "greedy_token_ids_hash": token_ids_hash(otter_tokens),
        "base_greedy_token_ids_hash": token_ids_hash(base_tokens),
        "yardstick": measure_yardstick(base, workload, device, yardstick_engine),
    }


def not_measured(layout: str, reason: str) -> dict[str, Any]:
    """results.json's non_disruption block when the check did not run, and why (`reason`, one phrase)."""
    return {
        "reason": reason,
        "layout": layout,
        "verdict": None,
        "exact": None,
        "max_abs_logit_diff": None,
        "argmax_agreement": None,
        "measured": False,
        "greedy_tokens_identical": None,
    }


def non_disruption_block(report: dict[str, Any], base_hash: str | None, dtype: str) -> dict[str, Any]:
    """results.json's non_disruption block: the Otter process's report set against the base arm's tokens,
    and judged against the base's own numerics (results/disruption_verdict.py)."""
    block = {
        **report,
        "measured": True,
        "base_arm_token_ids_hash": base_hash,
        # Otter decoded greedily on its own chose the base arm's tokens over the whole workload
        "greedy_tokens_identical": None
        if base_hash is None
        else report["greedy_token_ids_hash"] == base_hash,
    }
    return {**block, **judge(block, dtype)}
