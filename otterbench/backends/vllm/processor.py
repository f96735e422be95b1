"""Otter's guidance inside vLLM: one custom logits processor for both of vLLM's model runners.

vLLM 0.32 has two logits-processor interfaces: the V1 runner's (`vllm.v1.sample.logits_processor`; the
runner vLLM uses on CPU, which has no Triton) and the V2 runner's (`vllm.v1.worker.gpu.sample.
logits_processor`; the default on CUDA). This class implements both, so one name works on either.

The Otter model emits `[base logits | signal]` per row when the engine asks for the signal (layout.py); a
plain model emits the V logits alone. For every row the processor returns the first V columns: for a
request that names a rule (rules.py), 0 at the rule's token and -inf elsewhere, so vLLM's greedy sampler
picks it; the base logits otherwise, so the sampler never sees a signal column.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from vllm.v1.sample.logits_processor import LogitsProcessor as RunnerV1Processor
from vllm.v1.sample.logits_processor.builtin import process_dict_updates
from vllm.v1.worker.gpu.sample.logits_processor.interface import LogitsProcessor as RunnerV2Processor

from otterbench.backends.vllm.layout import SIGNAL_SWITCH
from otterbench.backends.vllm.rules import Guidance, parse_guidance


class OtterLogitsProcessor(RunnerV1Processor, RunnerV2Processor):
    """Cuts every row to the vocabulary, applying the arm's rule where its request names one."""

    def __init__(self, vllm_config: Any, *runner_args: Any) -> None:
        # V1 runner: (vllm_config, device, is_pin_memory); V2 runner: (vllm_config, req_states)
        self.vocab_size = vllm_config.model_config.get_vocab_size()
        self.emits_signal = bool(getattr(vllm_config.model_config.hf_config, SIGNAL_SWITCH, False))
        self.rules: dict[int, Guidance] = {}  # batch index (V1) or request slot (V2) -> its rule

    @classmethod
    def validate_params(cls, sampling_params: Any) -> None:
        parse_guidance(sampling_params.extra_args)

    def _rule_of(self, sampling_params: Any) -> Guidance | None:
        return parse_guidance(sampling_params.extra_args)

    # V1 runner
    def is_argmax_invariant(self) -> bool:
        return False  # a rule picks its own token: greedy depends on it

    def update_state(self, batch_update: Any) -> None:
        process_dict_updates(self.rules, batch_update, lambda params, _prompt, _out: self._rule_of(params))

    # V2 runner
    def add_request(self, req_idx: int, sampling_params: Any) -> bool:
        rule = self._rule_of(sampling_params)
        self.rules.pop(req_idx, None)  # slots are recycled
        if rule is not None:
            self.rules[req_idx] = rule
        return self.emits_signal or rule is not None  # with the signal on, every row is cut back to V

    # both
    def apply(self, logits: torch.Tensor, ctx: Any = None) -> torch.Tensor:
        """[rows, V (+ S)] -> [rows, V]: rule scores or base logits (rows = batch order in V1, `ctx` in V2)."""
        if not self.rules and logits.shape[-1] == self.vocab_size:
            return logits
        base = logits[:, : self.vocab_size]
        signal = logits[:, self.vocab_size :] if logits.shape[-1] > self.vocab_size else None
        keys = range(logits.shape[0]) if ctx is None else ctx.expanded_idx_mapping.tolist()
        groups: dict[Guidance, list[int]] = defaultdict(list)
        for row, key in enumerate(keys):
            if key in self.rules:
                groups[self.rules[key]].append(row)
        out = base.contiguous()
        for rule, rows in groups.items():
            index = torch.tensor(rows, device=logits.device)
            out[index] = rule.scores(base[index], None if signal is None else signal[index])
        return out
