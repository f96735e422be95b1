"""A toy arm and a toy generate-level backend, declared here alone, as the "add an arm" and "add a backend"
recipes of docs/architecture.md say: one spec each plus its registration, no module of the package touched.

- `toy-boost` (task "toy"): greedy over the base's logits with `toy_bonus` added to token TOY_TOKEN; its own
  task, its own knob (a suite field, a run option and a workload value from this declaration alone).
- `hf-generate`: a backend that owns the decode loop, driving transformers' own `generate` with the arm's
  `choose` rule as a logits processor; it runs the arms whose decision is one rule over the base model.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

from otterbench.arms import Arm, ArmSpec, Knob, register_arm
from otterbench.arms.decoding import CachedLM, greedy
from otterbench.backends import BackendSpec, GenerateOutput, ModelSources, register_backend

TOY_TOKEN = 7
TOY_BONUS = Knob("toy_bonus", float, 0.0, "toy: added to token 7's logit before the greedy pick")
HF_LABEL = Knob("hf_label", int, 0, "hf-generate: a label the backend reports with its memory facts")


def _boosted(logits: torch.Tensor, workload: Any) -> torch.Tensor:
    scores = logits.float().clone()
    scores[:, TOY_TOKEN] += workload.toy_bonus
    return greedy(scores)


class ToyBoostArm(Arm):
    """One cached base forward per token, greedy after the bonus."""

    name = "toy-boost"

    def __init__(self, llm: Any) -> None:
        self.llm = llm

    def generate_batch(self, batch, workload, observer, tally) -> torch.Tensor:
        lm = CachedLM(self.llm, "llm", tally, self.engine)
        tokens = [_boosted(lm.start(batch).logits[:, -1], workload)]
        observer.end_step()
        for _ in range(workload.max_new_tokens - 1):
            tokens.append(_boosted(lm.feed(tokens[-1]).logits[:, -1], workload))
            observer.end_step()
        return torch.cat(tokens, dim=1)


TOY_ARM = ArmSpec(
    "toy-boost",
    "separate",
    "toy",
    ("base",),
    lambda models: ToyBoostArm(models["base"]),
    knobs=(TOY_BONUS,),
    choose=lambda logits, signal, workload: _boosted(logits, workload),
    origin=__name__,
)


class _Rule(LogitsProcessor):
    """The arm's `choose` as a logits processor (every other token -inf), marking the time of each step."""

    def __init__(self, choose: Any, workload: Any, marks: list[float]) -> None:
        self.choose, self.workload, self.marks = choose, workload, marks

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self.marks.append(time.perf_counter())
        picked = self.choose(scores, None, self.workload)  # [B,1]
        return torch.full_like(scores, float("-inf")).scatter(1, picked, 0.0)


class HFGenerateBackend:
    """transformers' `generate` over the base model: greedy, exactly N tokens, the arm's rule per step."""

    name = "hf-generate"

    def __init__(self, options: dict[str, Any], device: Any) -> None:
        self.device, self.label = device, options["hf_label"]  # its own option, from BackendSettings

    def load(self, arm: ArmSpec, models: ModelSources, device: Any) -> None:
        from otterbench.models.loading import load_model

        self.arm = arm
        self.model = load_model(models.sources["base"], "base", device=device, dtype=models.dtype)

    def generate(self, workload: Any) -> GenerateOutput:
        config = GenerationConfig(
            max_new_tokens=workload.max_new_tokens, do_sample=False, eos_token_id=None,
            pad_token_id=workload.pad_token_id,
        )  # fmt: skip
        tokens, ttft, tpot = [], [], []
        started = time.perf_counter()
        for batch in workload.batches(self.device):
            marks = [time.perf_counter()]
            rule = LogitsProcessorList([_Rule(self.arm.choose, workload, marks)])
            with torch.inference_mode():
                out = self.model.generate(
                    input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                    generation_config=config, logits_processor=rule,
                )  # fmt: skip
            tokens += out[:, batch.input_ids.shape[1] :].tolist()
            steps = [later - earlier for earlier, later in zip(marks, marks[1:])]
            ttft.append(steps[0])
            tpot += steps[1:]
        total = time.perf_counter() - started
        calls = {"llm": len(ttft) + len(tpot)}
        facts = {"kv_cache": "transformers DynamicCache", "label": self.label}
        return GenerateOutput(tokens, ttft, tpot, total, calls, facts)


def _refuses(arm: Any) -> str | None:
    if arm.choose is None or arm.needs != ("base",):
        return "hf-generate decodes one base model with a per-step rule; this arm needs more"
    return None


TOY_BACKEND = BackendSpec(
    "hf-generate",
    "generate",
    "transformers' own generate loop (a test backend)",
    HFGenerateBackend,
    refuses=_refuses,
    options=(HF_LABEL,),
    origin=__name__,
)


def register() -> None:
    """Register the toy arm and backend (idempotent: a test module may import this twice)."""
    from otterbench.arms.registry import ARMS
    from otterbench.backends import BACKENDS

    if TOY_ARM.name not in ARMS:
        register_arm(TOY_ARM)
    if TOY_BACKEND.name not in BACKENDS:
        register_backend(TOY_BACKEND)
