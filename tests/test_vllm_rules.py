"""The rule the vLLM logits processor applies is the arm's own `choose`, found by name (no vLLM needed)."""

from __future__ import annotations

import pytest
import torch

from otterbench.arms.decoding import args_signal_choice
from otterbench.arms.dexperts import shift_signal_choice
from otterbench.arms.registry import arm_info
from otterbench.backends.vllm import refuses
from otterbench.backends.vllm.rules import (
    Guidance,
    guidance_args,
    guidance_for,
    parse_guidance,
    reference_problem,
)
from otterbench.workload import Workload


def _rows(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(6, 50, generator=generator), torch.randn(6, 50, generator=generator)


def _workload() -> Workload:
    knobs = {"k": 5, "weight": 1.5, "alpha": 2.0, "filter_p": 0.9}
    return Workload(((5, 6),), batch_size=1, max_new_tokens=2, vocab_size=50, pad_token_id=0, knobs=knobs)


def _guidance(arm: str) -> Guidance:
    spec = arm_info(arm)
    return guidance_for(spec.choose, tuple(knob.name for knob in spec.knobs), _workload())


@pytest.mark.parametrize(
    ("arm", "decide"), [("otter-args", args_signal_choice), ("otter-dexperts", shift_signal_choice)]
)
def test_the_processor_picks_the_arms_own_token(arm, decide) -> None:
    logits, signal = _rows()
    scores = _guidance(arm).scores(logits, signal)
    expected = decide(logits, signal, _workload())
    assert torch.equal(scores.argmax(dim=-1, keepdim=True), expected)
    assert torch.equal(torch.isfinite(scores).sum(-1), torch.ones(6, dtype=torch.long))  # one token left


def test_guidance_travels_through_extra_args() -> None:
    for arm in ("otter-args", "otter-dexperts"):
        guidance = _guidance(arm)
        assert parse_guidance(guidance_args(guidance)) == guidance
    assert dict(_guidance("otter-args").knobs) == {"k": 5, "weight": 1.5}  # the arm's own knobs only
    assert parse_guidance(None) is None and parse_guidance({"other": 1}) is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"otter_guidance": {"rule": "otterbench.nowhere:rule"}}, "cannot be imported"),
        (
            {"otter_guidance": {"rule": "otterbench.arms.units.args:_otter_rule", "knobs": 3}},
            "must be a dict",
        ),
        ({"otter_guidance": "otter-args"}, "must be a dict with a 'rule' string"),
    ],
)
def test_a_bad_request_is_refused_in_one_line(extra: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_guidance(extra)


def test_the_backend_refuses_separate_models_and_rules_a_worker_cannot_import() -> None:
    assert refuses(arm_info("base")) is None
    assert refuses(arm_info("otter-args")) is None and refuses(arm_info("otter-dexperts")) is None
    assert "separate models" in refuses(arm_info("args-faithful"))
    assert "separate models" in refuses(arm_info("dexperts-cached"))
    assert reference_problem(lambda logits, signal, workload: logits) is not None
