"""Arms that compute one decision in different forms: a run with both says whether their tokens were equal."""

from __future__ import annotations

import pytest
from repo_scripts import load_script

from otterbench.arms.registry import ARMS, arm_info, reference_spec
from otterbench.results.decisions import DecisionPair, decision_pairs, decisions_line


def _results(dtype: str, hashes: dict[str, str], statuses: dict[str, str] | None = None) -> dict:
    declared = {"args-optimized": "args-faithful", "otter-spec": "base"}
    arms = []
    for name, digest in hashes.items():
        arm = {"name": name, "status": (statuses or {}).get(name, "ok"), "token_ids_hash": digest}
        if name in declared:
            arm["decides_as"] = declared[name]
        arms.append(arm)
    return {"config": {"dtype": dtype}, "arms": arms}


def test_equal_tokens_are_said_in_one_quiet_line() -> None:
    results = _results("float32", {"base": "b", "args-faithful": "a", "args-optimized": "a"})
    assert decision_pairs(results) == [DecisionPair("args-optimized", "args-faithful", True)]
    line, warning = decisions_line(results)
    assert line == "decisions (equal in exact arithmetic): args-optimized = args-faithful (same tokens)"
    assert not warning


def test_a_float32_difference_is_a_warning_naming_the_pair() -> None:
    results = _results(
        "float32", {"base": "b", "args-faithful": "a", "args-optimized": "x", "otter-spec": "b"}
    )
    line, warning = decisions_line(results)
    assert warning
    assert "args-optimized ≠ args-faithful, otter-spec = base" in line
    assert "in float32 their tokens should be identical" in line


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_a_low_precision_difference_is_explained_not_flagged(dtype: str) -> None:
    results = _results(dtype, {"args-faithful": "a", "args-optimized": "x"})
    line, warning = decisions_line(results)
    assert not warning and f"{dtype} rounds the other kernel shapes differently" in line


def test_no_line_without_both_arms_finished() -> None:
    assert decisions_line(_results("float32", {"base": "b", "args-optimized": "a"})) is None
    failed = _results("float32", {"args-faithful": None, "args-optimized": "a"}, {"args-faithful": "failed"})
    assert decisions_line(failed) is None


def test_every_declared_counterpart_is_a_registered_arm_of_its_task_or_the_reference() -> None:
    declared = {spec.name: spec.decides_as for spec in ARMS.values() if spec.decides_as}
    assert {"args-optimized", "dexperts-cached", "spec-separate", "otter-spec"} <= set(declared)
    for name, other in declared.items():
        spec, target = arm_info(name), arm_info(other)
        assert target.task == spec.task or target is reference_spec(), (name, other)


def test_the_engines_summary_compares_each_arm_with_the_decision_it_reproduces() -> None:
    # scripts/engines_summary.py's "tokens = <first engine>" column: a token-level reward model decides its
    # own tokens, not args-faithful's; the vLLM forms of ARGS and of the base decide theirs
    module = load_script("engines_summary")
    keys = {name: module._decision(name) for name in ("base", "base-plugin", "args-vllm", "args-token")}
    assert keys == {
        "base": "base",
        "base-plugin": "base",
        "args-vllm": "args-faithful",
        "args-token": "args-token",
    }
