"""A toy arm and a toy generate-level backend, declared here alone, as the "add an arm" and "add a backend"
recipes of docs/architecture.md say: one spec each plus its registration, no module of the package touched.

- `toy-boost` (task "toy"): greedy over the base's logits with `toy_bonus` added to token TOY_TOKEN; its own
  task, its own knob (a suite field, a run option and a workload value from this declaration alone).
- `hf-generate`: a backend that owns the decode loop, driving transformers' own `generate` with the arm's
  `choose` rule as a logits processor; it runs the arms whose decision is one rule over the base model, and
  the Otter arms over a fused checkpoint (its own cached loop), so their non-disruption is judged on tokens.
- `toy-own-loop`: an arm that hf-generate's rule cannot express (it needs a second model), bringing its own
  loop for that backend (`ArmSpec.engine_loop`), as `args-vllm` does for the vllm backend.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

from otterbench.arms import Arm, ArmSpec, Knob, register_arm
from otterbench.arms.base import Tally
from otterbench.arms.decoding import CachedLM, greedy
from otterbench.backends import BackendSpec, GenerateOutput, ModelSources, register_backend

TOY_TOKEN = 7
TOY_BONUS = Knob("toy_bonus", float, 0.0, "toy: added to token 7's logit before the greedy pick")
HF_LABEL = Knob("hf_label", int, 0, "hf-generate: a label the backend reports with its memory facts")


def _greedy_rule(logits: torch.Tensor, signal: Any, workload: Any) -> torch.Tensor:
    return greedy(logits)


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


def _logprobs(logits: torch.Tensor, picked: torch.Tensor) -> torch.Tensor:
    """log_softmax of the original logits at the picked tokens [B,1] (the non-disruption check's evidence)."""
    return torch.log_softmax(logits.float(), dim=-1).gather(1, picked)


class _Rule(LogitsProcessor):
    """The arm's `choose` as a logits processor (every other token -inf), marking the time of each step."""

    def __init__(self, choose: Any, workload: Any, marks: list[float], logprobs: list[torch.Tensor]) -> None:
        self.choose, self.workload, self.marks, self.logprobs = choose, workload, marks, logprobs

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self.marks.append(time.perf_counter())
        picked = self.choose(scores, None, self.workload)  # [B,1]
        self.logprobs.append(_logprobs(scores, picked))
        return torch.full_like(scores, float("-inf")).scatter(1, picked, 0.0)


class HFGenerateBackend:
    """transformers' `generate` over the base model (its own cached loop over a fused Otter checkpoint, whose
    signal a logits processor cannot see): greedy, exactly N tokens, the arm's rule per step; asked for
    them, it reports the chosen tokens' log-probabilities."""

    name = "hf-generate"

    def __init__(self, options: dict[str, Any], device: Any) -> None:
        self.device, self.label = device, options["hf_label"]  # its own option, from BackendSettings

    def load(self, arm: ArmSpec, models: ModelSources, device: Any) -> None:
        from otterbench.dtypes import torch_dtype
        from otterbench.models.loading import load_model
        from otterbench.otter import load_fused

        self.arm, self.otter = arm, arm.needs == ("otter",)
        if self.otter:
            dtype = torch_dtype(models.dtype, torch.device(device).type)
            self.model = load_fused(models.sources["otter"], device=device, dtype=dtype)
        else:
            self.model = load_model(models.sources["base"], "base", device=device, dtype=models.dtype)

    def _transformers_loop(self, batch: Any, rule: _Rule, workload: Any) -> torch.Tensor:
        config = GenerationConfig(
            max_new_tokens=workload.max_new_tokens, do_sample=False, eos_token_id=None,
            pad_token_id=workload.pad_token_id,
        )  # fmt: skip
        out = self.model.generate(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask,
            generation_config=config, logits_processor=LogitsProcessorList([rule]),
        )  # fmt: skip
        return out[:, batch.input_ids.shape[1] :]

    def _otter_loop(self, batch: Any, rule: _Rule, workload: Any) -> torch.Tensor:
        lm = CachedLM(self.model, "otter", Tally())
        out, tokens = lm.start(batch), []
        for step in range(workload.max_new_tokens):
            rule.marks.append(time.perf_counter())
            logits = out.logits[:, -1]
            tokens.append(rule.choose(logits, out.signal[:, -1], workload))
            rule.logprobs.append(_logprobs(logits, tokens[-1]))
            if step + 1 < workload.max_new_tokens:
                out = lm.feed(tokens[-1])
        return torch.cat(tokens, dim=1)

    def generate(self, workload: Any, choose: Any = None, logprobs: bool = False) -> GenerateOutput:
        tokens, ttft, tpot, chosen = [], [], [], []
        loop = self._otter_loop if self.otter else self._transformers_loop
        started = time.perf_counter()
        for batch in workload.batches(self.device):
            marks, picked_logprobs = [time.perf_counter()], []
            rule = _Rule(choose or self.arm.choose, workload, marks, picked_logprobs)
            with torch.inference_mode():
                tokens += loop(batch, rule, workload).tolist()
            chosen += torch.cat(picked_logprobs, dim=1).tolist()
            steps = [later - earlier for earlier, later in zip(marks, marks[1:])]
            ttft.append(steps[0])
            tpot += steps[1:]
        total = time.perf_counter() - started
        calls = {"otter" if self.otter else "llm": len(ttft) + len(tpot)}
        facts = {"kv_cache": "transformers DynamicCache", "label": self.label}
        return GenerateOutput(tokens, ttft, tpot, total, calls, facts, logprobs=chosen if logprobs else None)

    def close(self) -> None:
        """Nothing to stop: the model goes with the process."""


class OwnLoop(HFGenerateBackend):
    """`toy-own-loop`'s own decode loop under hf-generate: greedy over the base, its models loaded as it likes
    (it reads the reward model's source, as a second engine would be started from it)."""

    def load(self, arm: ArmSpec, models: ModelSources, device: Any) -> None:
        super().load(arm, models, device)
        self.arm = TOY_ARM_GREEDY  # decide greedily: a rule the arm's spec does not declare
        self.label = f"own loop beside {models.sources['reward_model']}"


TOY_ARM_GREEDY = ArmSpec("toy-greedy", "base", None, ("base",), lambda models: None, choose=_greedy_rule)
# an arm whose decision needs a second model, so hf-generate refuses it by its rule; it brings its own loop
TOY_OWN_LOOP = ArmSpec(
    "toy-own-loop",
    "separate",
    "toy",
    ("base", "reward_model"),
    lambda models: None,
    backends=("hf-generate",),
    engine_loop=OwnLoop,
    origin=__name__,
)


def _refuses(arm: Any) -> str | None:
    if arm.choose is None or arm.needs not in (("base",), ("otter",)):
        return "hf-generate decodes one base (or fused Otter) model with a per-step rule; this arm needs more"
    return None


TOY_BACKEND = BackendSpec(
    "hf-generate",
    "generate",
    "transformers' own generate loop (a test backend)",
    HFGenerateBackend,
    refuses=_refuses,
    options=(HF_LABEL,),
    layouts=("fused",),  # as an inference engine: it would load the fused checkpoint only
    origin=__name__,
)


def register() -> None:
    """Register the toy arm and backend (idempotent: a test module may import this twice)."""
    from otterbench.arms.registry import ARMS
    from otterbench.backends import BACKENDS

    for arm in (TOY_ARM, TOY_OWN_LOOP):
        if arm.name not in ARMS:
            register_arm(arm)
    if TOY_BACKEND.name not in BACKENDS:
        register_backend(TOY_BACKEND)
