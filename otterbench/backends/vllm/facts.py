"""What a vLLM engine reports of a workload: per-request timings and memory as vLLM accounts it.

Timings come from each request's `RequestOutput.metrics` (vLLM's `RequestStateStats`, present with log stats
on): TTFT is vLLM's `first_token_latency` (arrival to first token), TPOT is `(last_token_ts -
first_token_ts) / (tokens - 1)` (engine-core timestamps); the workload's end to end is the backend's
wall clock around its requests. Memory: the weights as vLLM counted them while loading (its GPU model
runner's `model_memory_usage`, summed over tensor-parallel ranks) or, where vLLM keeps no such figure (its
CPU runner, which also repacks linear weights outside the module's parameters), the checkpoint's tensors in
the engine's dtype (`weights_from` says which); the KV-cache tensors every worker allocated (read inside the
workers), the KV-cache blocks vLLM reserved, and the blocks the workload's requests hold at their longest (vLLM's block
accounting: prompt + N - 1 computed tokens per request, in whole blocks, peak over the batches submitted
together). vLLM preallocates its KV cache, so a process's peak says little of what serving needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

TIMER = "vllm-request-metrics"  # the latency method results.json records for this backend


@dataclass(frozen=True)
class RequestTimings:
    """One sample per request, in seconds."""

    ttft_s: list[float]
    tpot_s: list[float]


def request_timings(outputs: Sequence[Any]) -> RequestTimings:
    """TTFT and TPOT seconds of each finished request, from vLLM's own request metrics."""
    ttft, tpot = [], []
    for output in outputs:
        stats = output.metrics
        if stats is None:
            raise RuntimeError("vLLM returned no request metrics: start the engine with log stats on")
        decode_s = stats.last_token_ts - stats.first_token_ts
        ttft.append(stats.first_token_latency)
        if stats.num_generation_tokens > 1:
            tpot.append(decode_s / (stats.num_generation_tokens - 1))
    return RequestTimings(ttft, tpot)


@dataclass(frozen=True)
class EngineMemory:
    """Bytes as vLLM holds them, summed over every worker (tensor-parallel rank)."""

    weights_bytes: int  # the model's weights (see weights_from)
    weights_from: str  # "vllm" (its load-time accounting) or "checkpoint" (its tensors in the engine's dtype)
    kv_cache_reserved_bytes: int  # the KV-cache tensors the workers allocated at start-up
    kv_cache_used_bytes: int  # the blocks the workload's requests hold at their longest (see module doc)
    kv_cache_blocks: int  # blocks vLLM reserved
    kv_cache_block_tokens: int  # tokens per block
    workers: int

    def to_dict(self) -> dict[str, Any]:
        return {"accounted_by": "vllm", **asdict(self)}


def _tensor_bytes(value: Any) -> int:
    import torch

    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(item) for item in value)
    if isinstance(value, dict):
        return sum(_tensor_bytes(item) for item in value.values())
    return 0


def worker_bytes(worker: Any) -> tuple[int | None, int]:
    """(weights as vLLM counted them at load, or None where it did not; KV-cache bytes) of one vLLM worker;
    runs inside the worker (LLM.collective_rpc)."""
    runner = worker.model_runner
    weights = getattr(runner, "model_memory_usage", None)
    return (int(weights) if weights else None), _tensor_bytes(getattr(runner, "kv_caches", None))


def checkpoint_bytes(folder: str | Path, dtype: str) -> int:
    """The bytes of every tensor in a checkpoint folder's safetensors files, in `dtype` (read from headers)."""
    import torch
    from safetensors import safe_open

    size = torch.empty(0, dtype=getattr(torch, dtype)).element_size()
    total = 0
    for path in sorted(Path(folder).glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as tensors:
            total += sum(math.prod(tensors.get_slice(name).get_shape()) for name in tensors.keys())
    return total * size


def blocks_held(tokens_per_batch: Sequence[Sequence[int]], block_tokens: int) -> int:
    """The most KV blocks one batch of requests submitted together holds (tokens computed per request)."""
    return max(sum(math.ceil(tokens / block_tokens) for tokens in batch) for batch in tokens_per_batch)


def engine_memory(
    llm: Any, tokens_per_batch: Sequence[Sequence[int]], folder: str | Path, dtype: str
) -> EngineMemory:
    """The engine's memory facts after a workload whose batches computed `tokens_per_batch` tokens each;
    `folder` and `dtype`: the checkpoint it serves, for the weights where vLLM keeps no count."""
    per_worker = llm.collective_rpc(worker_bytes)
    counted = [w for w, _ in per_worker]
    reserved = sum(kv for _, kv in per_worker)
    if all(w is not None for w in counted):
        weights, weights_from = sum(w for w in counted if w is not None), "vllm"
    else:
        weights, weights_from = checkpoint_bytes(folder, dtype), "checkpoint"
    cache = llm.llm_engine.vllm_config.cache_config
    blocks, block_tokens = int(cache.num_gpu_blocks or 0), int(cache.block_size)
    used_blocks = blocks_held(tokens_per_batch, block_tokens)
    used = reserved * used_blocks // blocks if blocks else 0
    return EngineMemory(weights, weights_from, reserved, used, blocks, block_tokens, len(per_worker))
