"""The `vllm` decode backend: an arm's model served by its own vLLM engine, the arm's rule in the sampler.

Generate-level (backends/spec.py `GenerateBackend`): `load` starts one engine for the arm, before anything
is measured: the base model for an arm that needs the base alone, the fused Otter checkpoint (served through
the plugin, its signal as extra logit columns) for an Otter arm. `generate` submits the workload's batches
one after another, each batch's prompts together (as the transformers arms decode a batch), greedy, exactly
N tokens per prompt; an arm whose rule is not plain greedy has it applied by the logits processor
(rules.py, processor.py). Timings and memory come from vLLM itself (facts.py).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from otterbench.backends.spec import TENSOR_PARALLEL_SIZE, GenerateOutput, ModelSources, greedy_choice
from otterbench.backends.vllm import KV_CACHE_MIB
from otterbench.backends.vllm.engine import (
    EngineOptions,
    chosen_logprobs,
    generate_requests,
    quiet_engine_logs,
    start_engine,
    stop_engine,
)
from otterbench.backends.vllm.facts import TIMER, engine_memory, request_timings
from otterbench.backends.vllm.rules import Guidance, guidance_for
from otterbench.models.roles import OTTER_ROLE

MIB = 2**20


def servable_folder(source: str, role: str, dtype: str, scratch: Path) -> Path:
    """A folder vLLM can load for `source`: a local folder as it is, anything else (the tiny profile, a hub
    id in the local cache) loaded as the transformers arms load it and saved into `scratch` with its
    tokenizer (vLLM's pooling front end reads the tokenizer files even for token-id inputs)."""
    if Path(source).expanduser().is_dir():
        return Path(source).expanduser()
    from otterbench.models.loading import load_model
    from otterbench.models.sources import tokenizer_for

    model = load_model(source, role, dtype=dtype)
    folder = scratch / role
    model.save_pretrained(folder)
    tokenizer_for(source).save_pretrained(folder)
    return folder


def engine_options(options: Mapping[str, Any], dtype: str, **fields: Any) -> EngineOptions:
    """The engine options of a run's backend options (`--tensor-parallel-size`, `--vllm-kv-cache-mib`) in
    `dtype`, with `fields` (EngineOptions' own) set; every engine of the backend starts from these."""
    size = int(options.get(TENSOR_PARALLEL_SIZE.name) or 1)
    kv_mib = int(options.get(KV_CACHE_MIB.name) or 0)
    return EngineOptions(
        dtype=dtype,
        tensor_parallel_size=size,
        max_model_len=None,
        kv_cache_memory_bytes=kv_mib * MIB if kv_mib else None,
        in_process=size == 1,  # its weights and KV cache in this process's RSS beside vLLM's own figures
        **fields,
    )


class VLLMBackend:
    """One arm's vLLM engine: started by `load`, decoding whole workloads in `generate`."""

    name = "vllm"

    def __init__(
        self, options: dict[str, Any], device: Any, architectures: Mapping[str, str] | None = None
    ) -> None:
        self.options, self.device = options, device
        # base class -> the architecture to serve it as (the integration-tax arm's norm path; tax.py)
        self.architectures = dict(architectures or {})
        self.llm: Any = None
        self.scratch: tempfile.TemporaryDirectory[str] | None = None
        self.memory: dict[str, Any] = {}

    def load(self, arm: Any, models: ModelSources, device: Any) -> None:
        """Start the arm's engine: the fused checkpoint for an Otter arm, else the base model."""
        role = OTTER_ROLE if OTTER_ROLE in arm.needs else "base"
        self.scratch = tempfile.TemporaryDirectory(prefix="otterbench-vllm-")
        folder = servable_folder(models.sources[role], role, models.dtype, Path(self.scratch.name))
        self.arm, self.counter = arm, arm.decider
        self.rule = None if arm.choose is greedy_choice else arm.choose
        self.processor = role == OTTER_ROLE or self.rule is not None  # the logits processor is installed
        signal, rules = role == OTTER_ROLE, self.processor
        options = engine_options(self.options, models.dtype, signal=signal, rules=rules)
        if self.architectures:
            served = json.loads((folder / "config.json").read_text())["architectures"][0]
            options = dataclasses.replace(options, architecture=self.architectures[served])
        quiet_engine_logs()
        self.llm = start_engine(folder, options)
        self.folder, self.dtype = folder, models.dtype

    def _guidance(self, workload: Any, choose: Any) -> Guidance | None:
        rule = self.rule if choose is None else choose
        if rule is None or rule is greedy_choice:
            return None  # vLLM's own greedy sampling (an Otter engine's processor cuts the signal columns)
        if not self.processor:
            raise ValueError(
                f"{self.arm.name}'s engine was started without the logits processor a rule needs"
            )
        return guidance_for(rule, tuple(knob.name for knob in self.arm.knobs), workload)

    def generate(self, workload: Any, choose: Any = None, logprobs: bool = False) -> GenerateOutput:
        """Each batch's prompts submitted together, one batch after another; vLLM's timings per request.
        `choose` replaces the arm's rule (the non-disruption check passes the base arm's greedy); `logprobs`
        asks for each chosen token's log-probability over the vocabulary (engine.py: LOGPROBS_MODE), which
        only the check's passes do: a measured repeat never pays for them."""
        guidance, n = self._guidance(workload, choose), workload.max_new_tokens
        if logprobs and guidance is not None:
            raise ValueError(
                "log-probabilities are read only under greedy: a rule's row is its own 0/-inf mask"
            )
        outputs, computed = [], []
        started = time.perf_counter()
        for start in range(0, workload.num_prompts, workload.batch_size):
            rows = workload.prompt_ids[start : start + workload.batch_size]
            outputs += generate_requests(self.llm, rows, n, guidance, logprobs)
            computed.append([len(row) + n - 1 for row in rows])  # the last token is never fed
        total_s = time.perf_counter() - started
        timings = request_timings(outputs)
        tokens = [list(output.outputs[0].token_ids) for output in outputs]
        calls = {self.counter: len(computed) * n}  # one engine step per token of each batch
        self.memory = engine_memory(self.llm, computed, self.folder, self.dtype).to_dict()
        chosen = [chosen_logprobs(output) for output in outputs] if logprobs else None
        return GenerateOutput(
            tokens, timings.ttft_s, timings.tpot_s, total_s, calls, self.memory, TIMER, logprobs=chosen
        )

    def close(self) -> None:
        """Stop the engine (its spawned processes go with it) and remove the scratch folder."""
        if self.llm is not None:
            stop_engine(self.llm)
            self.llm = None
        if self.scratch is not None:
            self.scratch.cleanup()
            self.scratch = None
