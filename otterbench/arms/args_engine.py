"""The `args-vllm` arm's decode loop: ARGS with a separate reward model, both served by vLLM.

Per generated token and per batch of the workload: one policy call returns each sequence's top-k next tokens
with their raw logits; one pooling call scores all B*k candidate continuations `prompt + generated +
candidate` with the reward model; `args_choice` (the rule every ARGS arm shares) picks argmax(logit +
w*reward); the pick is appended and the loop repeats, exactly N tokens. Both engines keep their prefix caches
within a workload (a step re-sends the sequence, vLLM serves its full blocks from cache) and start each
workload with them emptied, so a measured repeat never reads the previous repeat's sequences from cache.
The engines start as the vllm backend starts an arm's (`engine_options`: same options, same process model).

This is the separate model's cost in an engine that has no hook for it (backends/vllm/args_engines.py).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from otterbench.arms.decoding import args_choice
from otterbench.backends import GenerateOutput, ModelSources
from otterbench.backends.vllm.args_engines import (
    POLICY_ENGINE_ARGS,
    REWARD_ENGINE_ARGS,
    block_args,
    reward_scores,
    top_candidates,
)
from otterbench.backends.vllm.backend import engine_options, servable_folder
from otterbench.backends.vllm.engine import quiet_engine_logs, start_engine, stop_engine
from otterbench.backends.vllm.facts import engine_memory
from otterbench.workload import Workload

ENGINE_NAME = "vllm"
SUMMED = ("weights_bytes", "kv_cache_reserved_bytes", "kv_cache_used_bytes", "kv_cache_blocks", "workers")


class VllmArgsLoop:
    """A GenerateBackend of its own for `args-vllm`: a policy engine and a reward-model engine."""

    name = ENGINE_NAME

    def __init__(self, options: Mapping[str, Any], device: Any) -> None:
        self.options = dict(options)
        self.blocks = block_args(torch.device(device).type)
        self.engines: list[Any] = []
        self.folders: dict[str, Path] = {}  # role -> the checkpoint folder its engine serves
        self.scratch: tempfile.TemporaryDirectory[str] | None = None

    def load(self, arm: Any, models: ModelSources, device: Any) -> None:
        """Start both engines (the tiny profile's models saved for them into a scratch folder)."""
        quiet_engine_logs()
        self.scratch = tempfile.TemporaryDirectory(prefix="otterbench-vllm-")
        options, self.dtype = engine_options(self.options, models.dtype), models.dtype

        def start(role: str, engine_args: Mapping[str, Any]) -> Any:
            folder = servable_folder(models.sources[role], role, models.dtype, Path(self.scratch.name))
            self.folders[role] = folder
            self.engines.append(start_engine(folder, options, **engine_args, **self.blocks))
            return self.engines[-1]

        self.policy = start("base", POLICY_ENGINE_ARGS)
        self.reward_model = start("reward_model", REWARD_ENGINE_ARGS)

    def close(self) -> None:
        """Stop both engines (their processes go with them) and remove the scratch folder."""
        while self.engines:
            stop_engine(self.engines.pop())
        if self.scratch is not None:
            self.scratch.cleanup()
            self.scratch = None

    def generate(self, workload: Workload, choose: Any = None, logprobs: bool = False) -> GenerateOutput:
        """Exactly N ARGS tokens per prompt, batch by batch, two engine calls per token (no other rule, no
        log-probabilities: the non-disruption check asks only base and Otter arms for passes).

        Timings per request, as the vllm backend reports them: a batch's requests get their first token
        together (TTFT: the first step) and their later ones together (TPOT: the later steps' mean)."""
        if choose is not None:
            raise ValueError("args-vllm decides with its reward model: it takes no other rule")
        for llm in self.engines:
            llm.reset_prefix_cache()  # a repeat must not read the previous repeat's sequences
        tokens: list[list[int]] = []
        ttft: list[float] = []
        tpot: list[float] = []
        n = workload.max_new_tokens
        started = time.perf_counter()
        for prompts in _batches(workload):
            new, marks = self._decode_batch(prompts, workload)
            tokens += new
            ttft += [marks[1] - marks[0]] * len(prompts)
            if n > 1:
                tpot += [(marks[-1] - marks[1]) / (n - 1)] * len(prompts)
        total = time.perf_counter() - started
        steps = len(_batches(workload)) * n
        calls = {"llm": steps, "reward_model": steps}  # one engine call of each per token of a batch
        return GenerateOutput(tokens, ttft, tpot, total, calls, self._memory(workload))

    def _decode_batch(
        self, prompts: tuple[tuple[int, ...], ...], workload: Workload
    ) -> tuple[list[list[int]], list[float]]:
        """N tokens for each prompt of one batch; the time mark before the first step and after each."""
        sequences = [list(ids) for ids in prompts]
        new: list[list[int]] = [[] for _ in prompts]
        marks = [time.perf_counter()]
        for _ in range(workload.max_new_tokens):
            ranked = top_candidates(self.policy, sequences, workload.k)
            # the top-k raw logits placed in a [B, V] row (-inf elsewhere): args_choice ranks exactly these
            ids = torch.tensor([[token for token, _ in row] for row in ranked])
            logits = torch.tensor([[logit for _, logit in row] for row in ranked], dtype=torch.float32)
            scores = torch.full((len(sequences), workload.vocab_size), float("-inf")).scatter(1, ids, logits)
            token, _ = args_choice(scores, workload.k, workload.weight, self._rewards_of(sequences))
            for row, chosen in enumerate(token[:, 0].tolist()):
                sequences[row].append(chosen)
                new[row].append(chosen)
            marks.append(time.perf_counter())
        return new, marks

    def _rewards_of(self, sequences: list[list[int]]) -> Any:
        def rewards(candidates: torch.Tensor) -> torch.Tensor:
            """[B, k] candidates -> [B, k] rewards of `sequence + candidate`, all in one pooling call."""
            rows = [seq + [token] for seq, row in zip(sequences, candidates.tolist()) for token in row]
            return torch.tensor(reward_scores(self.reward_model, rows)).view(candidates.shape)

        return rewards

    def _memory(self, workload: Workload) -> dict[str, Any]:
        """Both engines' memory as vLLM accounts it, summed (results.json memory.engine), and each one's
        weights. The policy's requests compute the sequence so far (prompt + N - 1 at the last step); the
        reward model's k requests per prompt (prompt + N) are counted without their shared prefix: an upper
        bound of its KV cache used."""
        n, k = workload.max_new_tokens, workload.k
        batches = _batches(workload)
        computed = [[len(p) + n - 1 for p in rows] for rows in batches]
        policy = engine_memory(self.policy, computed, self.folders["base"], self.dtype).to_dict()
        scored = [[len(p) + n for p in rows] * k for rows in batches]
        reward = engine_memory(self.reward_model, scored, self.folders["reward_model"], self.dtype).to_dict()
        both = {**policy, **{key: policy[key] + reward[key] for key in SUMMED}}
        both["policy_weights_bytes"] = policy["weights_bytes"]
        both["reward_model_weights_bytes"] = reward["weights_bytes"]
        return both


def _batches(workload: Workload) -> list[tuple[tuple[int, ...], ...]]:
    """The workload's prompts in its batches, in order (unpadded: vLLM takes each request as it is)."""
    size = workload.batch_size
    return [workload.prompt_ids[first : first + size] for first in range(0, workload.num_prompts, size)]


def vllm_args_loop(options: Mapping[str, Any], device: Any) -> VllmArgsLoop:
    """`ArmSpec.engine_loop` of `args-vllm`."""
    return VllmArgsLoop(options, device)
