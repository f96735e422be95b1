"""An arm's decision rule as a vLLM request carries it: the rule by import path, and the task knobs it reads.

The rule is the arm's own `ArmSpec.choose` (logits [B,V], signal [B,V] or None, workload) -> tokens [B,1],
so vLLM decides exactly as the transformers arm does (one home for every rule: the arm's unit). vLLM's
engine core and workers are other processes, so a request names the rule by `module:qualname` and carries
the knob values (`SamplingParams.extra_args`); the logits processor imports the rule there. backends/ sits
below arms/ in the layers: this module never imports an arm, it calls the function it is named.
Torch only; no vLLM import (the front end validates a request's guidance with it).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch

from otterbench.backends.vllm.layout import GUIDANCE_ARG
from otterbench.knobs import KnobAttributes

Choose = Callable[[torch.Tensor, torch.Tensor | None, Any], torch.Tensor]


def rule_reference(choose: Callable[..., Any]) -> str:
    """`module:qualname` of a rule function."""
    return f"{choose.__module__}:{choose.__qualname__}"


@cache
def import_rule(reference: str) -> Choose:
    """The function `reference` names (`module:qualname`); ValueError when it names none."""
    module_name, _, qualname = reference.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError, ValueError) as error:
        raise ValueError(f"rule {reference!r} cannot be imported: {error}") from None
    if not callable(found):
        raise ValueError(f"rule {reference!r} is not a function")
    return found


def reference_problem(choose: Callable[..., Any]) -> str | None:
    """Why a vLLM worker could not find `choose` by its import path (a lambda, a local function), or None."""
    reference = rule_reference(choose)
    try:
        found = import_rule(reference)
    except ValueError:
        found = None
    if found is not choose:
        return f"its rule {reference} is not importable by name (vLLM's workers import it): define it at module level"
    return None


@dataclass(frozen=True)
class RuleKnobs(KnobAttributes):
    """The task knobs a rule reads, as attributes (`knobs.k`): what a rule needs of the workload."""

    knobs: Mapping[str, Any]


@dataclass(frozen=True)
class Guidance:
    """One request's rule and its knob values (hashable: the processor groups rows by it)."""

    rule: str  # module:qualname of the arm's choose
    knobs: tuple[tuple[str, Any], ...] = ()

    def choose(self, logits: torch.Tensor, signal: torch.Tensor | None) -> torch.Tensor:
        """The rule's next tokens [B,1]."""
        return import_rule(self.rule)(logits, signal, RuleKnobs(dict(self.knobs)))

    def scores(self, logits: torch.Tensor, signal: torch.Tensor | None) -> torch.Tensor:
        """[B,V] with 0 at the rule's token and -inf elsewhere: vLLM's greedy sampler picks that token."""
        tokens = self.choose(logits, signal)
        return torch.full_like(logits, float("-inf"), dtype=torch.float32).scatter(1, tokens, 0.0)


def guidance_for(choose: Callable[..., Any], knob_names: tuple[str, ...], workload: Any) -> Guidance:
    """The guidance of a rule reading `knob_names`, with the workload's values."""
    return Guidance(rule_reference(choose), tuple((name, getattr(workload, name)) for name in knob_names))


def guidance_args(guidance: Guidance) -> dict[str, Any]:
    """`SamplingParams.extra_args` asking the Otter logits processor for `guidance`."""
    return {GUIDANCE_ARG: {"rule": guidance.rule, "knobs": dict(guidance.knobs)}}


def parse_guidance(extra_args: dict[str, Any] | None) -> Guidance | None:
    """The guidance a request's extra_args ask for; None for none; ValueError naming the bad field."""
    request = (extra_args or {}).get(GUIDANCE_ARG)
    if request is None:
        return None
    if not isinstance(request, dict) or not isinstance(request.get("rule"), str):
        raise ValueError(f"extra_args[{GUIDANCE_ARG!r}] must be a dict with a 'rule' string, got {request!r}")
    knobs = request.get("knobs") or {}
    if not isinstance(knobs, dict):
        raise ValueError(f"extra_args[{GUIDANCE_ARG!r}]['knobs'] must be a dict, got {knobs!r}")
    import_rule(request["rule"])  # a rule that cannot be found is refused with the request, not mid-batch
    return Guidance(request["rule"], tuple(sorted(knobs.items())))
