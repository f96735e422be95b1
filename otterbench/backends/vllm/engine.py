"""A vLLM engine's lifecycle over the offline `LLM`: start one for a checkpoint (the plugin registers Otter's
architectures), generate exactly N greedy tokens per prompt, with or without an arm's rule, stop it.

Token ids in, token ids out (`skip_tokenizer_init`): the workload is tokenised once by otterbench, as for the
transformers arms. vLLM spawns its workers, so a script calling `start_engine` needs an
`if __name__ == "__main__":` guard.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otterbench.backends.vllm import KV_CACHE_MIB
from otterbench.backends.vllm.layout import SIGNAL_SWITCH
from otterbench.backends.vllm.rules import Guidance, guidance_args

PROCESSOR = "otterbench.backends.vllm.processor:OtterLogitsProcessor"
# Where a requested log-probability comes from (an engine argument: one mode for every request). vLLM's
# default, "raw_logprobs", is the log-softmax of the model's raw output row: for an Otter engine with its
# signal on that row is [base logits | signal] (2V wide), so the normalisation would span the signal columns.
# "processed_logprobs" is the log-softmax of the row vLLM's greedy sampler takes its argmax over, after the
# logits processors: the Otter processor has cut it to the V base logits (processor.py), a plain engine's is
# its V logits, so every engine reports the same quantity over the vocabulary alone, every id included (the
# stop ids too: greedy_params sets no min_tokens, whose processor would put them at -inf). For a request
# naming a rule the row is the rule's 0/-inf mask: ask log-probabilities only of greedy requests. The mode
# changes nothing for greedy requests that do not ask (vLLM computes log-probabilities only for those that
# do; on CUDA the mode also keeps FlashInfer's top-k/top-p sampler off, which greedy decoding never runs).
LOGPROBS_MODE = "processed_logprobs"


@dataclass(frozen=True)
class EngineOptions:
    """How one vLLM engine is started (vLLM's own names where it has one)."""

    dtype: str = "float32"
    tensor_parallel_size: int = 1
    enforce_eager: bool = True  # vLLM's torch.compile costs minutes on a small CPU; tokens match either way
    max_model_len: int | None = 512  # None: the model's own context length
    # None: vLLM's default (on CPU VLLM_CPU_KVCACHE_SPACE wins); the run's default is the knob's (MiB)
    kv_cache_memory_bytes: int | None = KV_CACHE_MIB.default * 2**20
    seed: int = 0
    signal: bool = False  # an Otter checkpoint emitting its signal as extra logit columns (layout.py)
    rules: bool = False  # the logits processor applying the rule a request names (always on with `signal`)
    log_stats: bool = True  # per-request timings in RequestOutput.metrics (facts.py reads them)
    # the engine core in this process (no spawned core): its weights and KV cache count in this process's RSS;
    # tensor-parallel ranks are spawned processes whatever this says
    in_process: bool = False
    architecture: str | None = None  # serve the checkpoint as this registered architecture (tax.py)


def engine_kwargs(checkpoint: str | Path, options: EngineOptions) -> dict[str, Any]:
    """The keyword arguments of `vllm.LLM` for `checkpoint` under `options`."""
    kwargs: dict[str, Any] = {
        "model": str(checkpoint),
        "skip_tokenizer_init": True,
        "dtype": options.dtype,
        "tensor_parallel_size": options.tensor_parallel_size,
        "enforce_eager": options.enforce_eager,
        "seed": options.seed,
        "disable_log_stats": not options.log_stats,
        "logprobs_mode": LOGPROBS_MODE,
    }
    if options.max_model_len is not None:
        kwargs["max_model_len"] = options.max_model_len
    if options.kv_cache_memory_bytes is not None:
        kwargs["kv_cache_memory_bytes"] = options.kv_cache_memory_bytes
    overrides: dict[str, Any] = {}
    if options.architecture is not None:
        overrides["architectures"] = [options.architecture]
    if options.signal:
        overrides[SIGNAL_SWITCH] = True
    if overrides:
        kwargs["hf_overrides"] = overrides
    if options.signal or options.rules:
        kwargs["logits_processors"] = [PROCESSOR]
    return kwargs


def engine_environment(options: EngineOptions, cores: Sequence[int]) -> dict[str, str]:
    """The environment variables vLLM reads at start-up for `options` (the caller's own settings win).

    CPU tensor parallelism binds each rank's OpenMP threads to its own share of `cores` (vLLM refuses
    ranks sharing the default binding). Set only while the engine starts.
    """
    wanted: dict[str, str] = {}
    if options.in_process:
        wanted["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    size = options.tensor_parallel_size
    if size > 1:
        share = max(1, len(cores) // size)
        groups = [cores[rank * share : (rank + 1) * share] or cores[-1:] for rank in range(size)]
        wanted["VLLM_CPU_OMP_THREADS_BIND"] = "|".join(",".join(map(str, group)) for group in groups)
        wanted["VLLM_CPU_NUM_OF_RESERVED_CPU"] = "0"
    return {name: value for name, value in wanted.items() if name not in os.environ}


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    os.environ.update(values)
    try:
        yield
    finally:
        for name in values:
            os.environ.pop(name, None)


def quiet_engine_logs() -> None:
    """For a run, which draws its own progress: vLLM's info and warnings would interleave with it. Read by vLLM
    when it is first imported and by the engine processes it starts; a value the caller set wins."""
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")


def start_engine(checkpoint: str | Path, options: EngineOptions = EngineOptions(), **engine_args: Any) -> Any:
    """A `vllm.LLM` serving `checkpoint` (a fused Otter checkpoint needs the plugin installed); `engine_args`:
    further `vllm.LLM` arguments over the options' own (args-vllm's pooling and raw-logits engines)."""
    from vllm import LLM

    # facts.py reads the workers' weights and KV cache with a function sent to them, which vLLM's IPC
    # carries only with this set (pickled between this process and the engine's own, never over a network)
    os.environ.setdefault("VLLM_ALLOW_INSECURE_SERIALIZATION", "1")
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) < options.tensor_parallel_size:  # an arm process pinned to fewer cores than ranks
        cores = list(range(os.cpu_count() or 1))
    with _environment(engine_environment(options, cores)):
        return LLM(**{**engine_kwargs(checkpoint, options), **engine_args})


def stop_engine(llm: Any) -> None:
    """Shut down the engine's core and worker processes now (not at garbage collection)."""
    llm.llm_engine.engine_core.shutdown()


@contextmanager
def running_engine(checkpoint: str | Path, options: EngineOptions = EngineOptions()) -> Iterator[Any]:
    """`start_engine` for the duration of a `with` block; stopped on leaving it, even on an error."""
    llm = start_engine(checkpoint, options)
    try:
        yield llm
    finally:
        stop_engine(llm)


def greedy_params(max_new_tokens: int, guidance: Guidance | None = None, logprobs: bool = False) -> Any:
    """Greedy sampling of exactly `max_new_tokens`, decided by `guidance`'s rule if given; with `logprobs`, each
    chosen token's log-probability too (LOGPROBS_MODE; 0 top alternatives).

    `ignore_eos` alone makes the length exact: the end-of-sequence id is neither a stop nor added to the stop
    ids from the generation config, and it stays choosable, as in the transformers arms (which decode N tokens
    whatever they are). `min_tokens=N` would also give N tokens, but its processor puts every stop id at -inf
    at every step: where the end id is the argmax vLLM would pick another token than the transformers arms.
    """
    from vllm import SamplingParams

    return SamplingParams(
        temperature=0.0,
        max_tokens=max_new_tokens,
        ignore_eos=True,
        detokenize=False,
        extra_args=guidance_args(guidance) if guidance is not None else None,
        logprobs=0 if logprobs else None,
    )


def generate_requests(
    llm: Any,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    guidance: Guidance | None = None,
    logprobs: bool = False,
) -> list[Any]:
    """vLLM's RequestOutputs for `prompts` submitted together, exactly `max_new_tokens` each (checked); with
    `logprobs`, each carrying its chosen tokens' log-probabilities (`chosen_logprobs` reads them)."""
    from vllm.inputs import TokensPrompt

    requests = [TokensPrompt(prompt_token_ids=[int(t) for t in ids]) for ids in prompts]
    params = greedy_params(max_new_tokens, guidance, logprobs)
    outputs = llm.generate(requests, params, use_tqdm=False)
    short = [
        len(out.outputs[0].token_ids) for out in outputs if len(out.outputs[0].token_ids) != max_new_tokens
    ]
    if short:
        raise RuntimeError(f"vLLM returned {short} tokens for some prompts, not {max_new_tokens}")
    return outputs


def chosen_logprobs(output: Any) -> list[float]:
    """One RequestOutput's log-probability of each token it generated (asked for with `logprobs`)."""
    completion = output.outputs[0]
    if completion.logprobs is None:
        raise ValueError("the request was generated without logprobs")
    return [float(step[token].logprob) for step, token in zip(completion.logprobs, completion.token_ids)]


def generate_greedy(
    llm: Any, prompts: Sequence[Sequence[int]], max_new_tokens: int, guidance: Guidance | None = None
) -> list[list[int]]:
    """Exactly `max_new_tokens` greedy token ids per prompt (ids in, ids out), decided by `guidance` if given."""
    outputs = generate_requests(llm, prompts, max_new_tokens, guidance)
    return [list(output.outputs[0].token_ids) for output in outputs]
