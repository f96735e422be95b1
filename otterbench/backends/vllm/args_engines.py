"""ARGS's two engines in vLLM, driven as a vLLM user drives a separate reward model (docs/vllm.md).

vLLM has no hook for a second model inside its decode loop, so each generated token costs two engine calls:
- the policy: one request per sequence (`max_tokens=1`, `logprobs=k`), its prefix served from vLLM's prefix
  cache; `logprobs_mode="raw_logits"` makes the k returned values the model's raw logits, the very numbers
  transformers' ARGS arms rank and add the reward to (raw log-probs would differ from them by a per-row
  constant, which leaves argmax(logit + w*reward) over the top-k unchanged but not bit-for-bit the scores);
- the reward model: a pooling engine (vLLM loads transformers' `*ForSequenceClassification` as a
  classifier; LAST pooling = the hidden state of each sequence's last token, as otterbench's arms read it),
  all k candidate sequences of all prompts in one `encode` call, with prefix caching (vLLM enables it for
  causal LAST pooling), activation off so the score is the head's raw output.

Token ids in, token ids and floats out. Torch-free; vLLM is imported where a call needs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

RAW_LOGITS = "raw_logits"  # vLLM's logprobs_mode returning the logits before any processing


# `vllm.LLM` arguments of the policy engine: raw logits of its top-k, prefix caching on; `max_logprobs=-1`
# lifts vLLM's cap (20) on what a request may ask (each asks for the run's k)
POLICY_ENGINE_ARGS = {"enable_prefix_caching": True, "logprobs_mode": RAW_LOGITS, "max_logprobs": -1}
# ... of the reward model served as a pooling (classification) model; vLLM's pooling front end needs the
# checkpoint's tokenizer even for token-id inputs (the folder must hold one, as `otterbench models save` writes)
REWARD_ENGINE_ARGS = {"runner": "pooling", "skip_tokenizer_init": False, "enable_prefix_caching": True}
# the prefix cache serves whole KV blocks: at vLLM's CPU default (128 tokens) a sequence shorter than a block
# never hits it and every step recomputes every sequence; 32 is the smallest block vLLM's CPU attention takes
# (measured on the tiny profile, 8 safety prompts x 16 tokens: ~3.5x faster than 128, the same tokens).
# On CUDA, vLLM's default (16), named so that the block the engines run is the one the planner prices.
CPU_BLOCK_TOKENS = 32
CUDA_BLOCK_TOKENS = 16


def block_tokens(device_type: str) -> int:
    """Tokens per KV block of both ARGS engines on `device_type` (the planner's `vllm_block_size`)."""
    return CPU_BLOCK_TOKENS if device_type == "cpu" else CUDA_BLOCK_TOKENS


def block_args(device_type: str) -> dict[str, int]:
    """The `vllm.LLM` block size both ARGS engines take on `device_type`."""
    return {"block_size": block_tokens(device_type)}


def top_candidates(llm: Any, sequences: Sequence[Sequence[int]], k: int) -> list[list[tuple[int, float]]]:
    """Per sequence, its k most likely next tokens as (id, raw logit), best first: one generate call."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    params = SamplingParams(temperature=0.0, max_tokens=1, logprobs=k, ignore_eos=True, detokenize=False)
    requests = [TokensPrompt(prompt_token_ids=list(ids)) for ids in sequences]
    outputs = llm.generate(requests, params, use_tqdm=False)
    ranked = []
    for output in outputs:
        # token id -> Logprob(logprob, rank): the k best, plus the sampled token were it not among them
        entries = output.outputs[0].logprobs[0]
        best = sorted(entries.items(), key=lambda item: item[1].rank)[:k]
        ranked.append([(token, entry.logprob) for token, entry in best])
    return ranked


def reward_scores(llm: Any, sequences: Sequence[Sequence[int]]) -> list[float]:
    """The reward model's score of each sequence (its one label, no activation): one pooling call."""
    from vllm.inputs import TokensPrompt
    from vllm.pooling_params import PoolingParams

    requests = [TokensPrompt(prompt_token_ids=list(ids)) for ids in sequences]
    outputs = llm.encode(
        requests, PoolingParams(use_activation=False), pooling_task="classify", use_tqdm=False
    )
    return [float(output.outputs.data.reshape(-1)[0]) for output in outputs]
