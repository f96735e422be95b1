"""The two reference algorithms re-implemented for tests, greedy and batch 1, from reading their code.

- ARGS (deeplearning-wisc/args, `argsearch.py`, `ARGS.generate` with method="greedy"): per step the LLM is
  fed the tokens its cache has not seen, the top-k of its last logits are the candidates, the reward model
  (the sequence classifier itself, its `.logits`) scores k rows `sequence + candidate` on its own cache, the
  pick is the top-1 of `reward * weight + logit`, and the reward model's cache is reordered to k copies of
  the picked row every step (a new tuple of tensors; the last step's copy is made and thrown away).
- DExperts (alisawuffles/DExperts, `generation/dexperts_generation.py`, `DExpertsGeneration.generate` with
  sample=False): per step the base, expert and anti-expert each run over the whole sequence, the base logits
  are nucleus-filtered (top-p `filter_p`, tokens outside get -inf) at every position, and the pick is the
  argmax of `base + alpha * (expert - anti)` at the last position.

One change from the references, the same the arms make: no stop at EOS (every arm generates exactly N).
No code is copied; these exist so that tests/test_faithful.py can check the faithful arms against them.
"""

from __future__ import annotations

from typing import Any

import torch

from otterbench.compat import cache_kwargs, output_cache


def _ones(rows: int, columns: int) -> torch.Tensor:
    return torch.ones(rows, columns, dtype=torch.long)


def _reordered(cache: Any, rows: torch.Tensor) -> Any:
    """A reordered copy of a reward-model cache (the reference's `_reorder_cache`: new tensors per layer)."""
    from transformers import DynamicCache

    copy = DynamicCache()
    for index, layer in enumerate(cache.layers):
        copy.update(layer.keys.index_select(0, rows), layer.values.index_select(0, rows), index)
    return copy


@torch.inference_mode()
def args_reference(
    llm: Any, reward_model: Any, prompt: list[int], max_new_tokens: int, k: int, weight: float
) -> list[int]:
    """ARGS greedy decoding of one prompt (batch 1): the N tokens it appends."""
    tokens = torch.tensor([prompt])
    llm_cache = rm_cache = None
    for _ in range(max_new_tokens):
        seen = 0 if llm_cache is None else llm_cache.get_seq_length()
        out = llm(
            input_ids=tokens[:, seen:],
            attention_mask=_ones(1, tokens.shape[1]),
            use_cache=True,
            **cache_kwargs(llm_cache),
        )
        llm_cache = output_cache(out)
        top_logits, top_tokens = torch.topk(out.logits[:, -1], k=k, dim=-1)  # [1,k]
        rows = torch.cat([tokens.repeat(k, 1), top_tokens.T], dim=1)  # [k, L+1]: sequence + candidate
        seen = 0 if rm_cache is None else rm_cache.get_seq_length()
        scored = reward_model(
            input_ids=rows[:, seen:],
            attention_mask=_ones(k, rows.shape[1]),
            use_cache=True,
            **cache_kwargs(rm_cache),
        )
        scores = scored.logits.flatten() * weight + top_logits.flatten()
        best = torch.topk(scores, k=1).indices  # [1]
        rm_cache = _reordered(output_cache(scored), best.repeat(k))
        tokens = rows[best]
    return tokens[0, len(prompt) :].tolist()


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus filtering over the last dim: drop tokens once the cumulative probability of those ranked
    above them exceeds top_p (the most probable token always stays); dropped logits become -inf."""
    if top_p >= 1.0:
        return logits
    ranked, order = torch.sort(logits, descending=True)
    cumulative = torch.cumsum(torch.softmax(ranked, dim=-1), dim=-1)
    drop_ranked = cumulative > top_p
    drop_ranked[..., 1:] = drop_ranked[..., :-1].clone()  # keep the token that crosses top_p
    drop_ranked[..., 0] = False
    drop = drop_ranked.scatter(-1, order, drop_ranked)
    return logits.masked_fill(drop, float("-inf"))


@torch.inference_mode()
def dexperts_reference(
    llm: Any,
    expert: Any,
    anti_expert: Any,
    prompt: list[int],
    max_new_tokens: int,
    alpha: float,
    filter_p: float,
) -> list[int]:
    """DExperts greedy decoding of one prompt (batch 1): the N tokens it appends."""
    tokens = torch.tensor([prompt])
    for _ in range(max_new_tokens):
        mask = _ones(1, tokens.shape[1])
        positions = mask.cumsum(dim=1) - 1
        base, plus, minus = (
            model(tokens, attention_mask=mask, position_ids=positions).logits  # [1, L, V]
            for model in (llm, expert, anti_expert)
        )
        ensemble = top_p_filter(base, filter_p) + alpha * (plus - minus)
        tokens = torch.cat([tokens, ensemble[:, -1].argmax(dim=-1, keepdim=True)], dim=1)
    return tokens[0, len(prompt) :].tolist()
