"""Non-disruption judged against the base's own numerics: the classes, the yardstick a run records, its schema
and the gate reading the same classes."""

from __future__ import annotations

import copy

import jsonschema
import pytest
import torch
from factories import make_results
from repo_scripts import load_script
from rich.console import Console

from otterbench.models.tiny import build_tiny_model
from otterbench.results.disruption_verdict import (
    DISRUPTED,
    EXACT,
    FULL_PRECISION_TOLERANCE,
    VERDICTS,
    WITHIN,
    WITHIN_RATIO,
    judge,
)
from otterbench.results.files import load_run, validate_results
from otterbench.results.gate import check_runs
from otterbench.results.summary import non_disruption_line
from otterbench.run import pipeline as runner
from otterbench.run.config import resolve_run_config
from otterbench.run.generated_check import generated_block
from otterbench.run.record import token_ids_hash
from otterbench.run.yardstick import composition_change, measure_yardstick
from otterbench.workload import Workload


def _change(name: str, max_abs: float, agreement: float = 1.0) -> dict:
    return {
        "change": name,
        "exact": max_abs == 0,
        "max_abs_logit_diff": max_abs,
        "argmax_agreement": agreement,
        "positions": 40,
    }


def _block(otter_max: float, base_own: float, exact: bool = False, same_tokens: bool = True) -> dict:
    """A measured non_disruption block: Otter's deviation and a yardstick whose largest change is `base_own`."""
    return {
        "layout": "fused",
        "scope": "whole workload",
        "exact": exact,
        "max_abs_logit_diff": otter_max,
        "argmax_agreement": 0.98,
        "positions": 80,
        "measured": True,
        "greedy_token_ids_hash": "a" if same_tokens else "b",
        "base_greedy_token_ids_hash": "a",
        "base_arm_token_ids_hash": "a",
        "greedy_tokens_identical": same_tokens,
        "yardstick": {
            "scope": "every prompt position and cached decode step of the workload",
            "max_abs_logit_diff": base_own,
            "argmax_agreement": 0.99,
            "changes": {
                "batch_composition": _change("each prompt alone", base_own / 2),
                "engine": {
                    **_change("eager vs compiled engine", base_own, 0.99),
                    "engines": ["eager", "compiled"],
                    "seconds": 12.5,
                },
            },
        },
    }


@pytest.mark.parametrize(
    ("otter_max", "base_own", "exact", "dtype", "verdict"),
    [
        (0.0, 0.03, True, "bfloat16", EXACT),  # bit-for-bit, whatever the base's own numerics
        (0.03, 0.03, False, "bfloat16", WITHIN),  # the size of the base's own deviation: ratio 1
        (0.06, 0.03, False, "bfloat16", WITHIN),  # one bf16 step above it: ratio WITHIN_RATIO
        (0.07, 0.03, False, "bfloat16", DISRUPTED),  # beyond WITHIN_RATIO x the base's own
        (0.32, 0.03, False, "bfloat16", DISRUPTED),
        (1e-3, 0.0, False, "bfloat16", DISRUPTED),  # a bit-stable base leaves no room
        (2e-6, 1e-6, False, "float32", WITHIN),  # fp32: under its tolerance, same tokens
        (2e-6, 0.0, False, "float32", WITHIN),  # fp32 does not need a yardstick above 0
        (0.01, 0.03, False, "float32", DISRUPTED),  # fp32: above its tolerance even if the base moves more
    ],
)
def test_verdict_classes_on_synthetic_deviations(otter_max, base_own, exact, dtype, verdict) -> None:
    judged = judge(_block(otter_max, base_own, exact), dtype)
    assert judged["verdict"] == verdict
    if base_own:
        assert judged["ratio_to_yardstick"] == pytest.approx(otter_max / base_own)
    else:
        assert judged["ratio_to_yardstick"] is None


def test_float32_needs_identical_tokens_and_the_thresholds_are_what_the_module_states() -> None:
    assert judge(_block(2e-6, 1e-6, same_tokens=False), "float32")["verdict"] == DISRUPTED
    assert FULL_PRECISION_TOLERANCE["float32"] > 2e-6 and WITHIN_RATIO == 2.0
    assert VERDICTS.index(EXACT) < VERDICTS.index(WITHIN) < VERDICTS.index(DISRUPTED)


def _tokens_block(
    lp: float | None, own_lp: float | None, agreement: float = 1.0, arm_same: bool = True
) -> dict:
    """A generate-level block: Otter's greedy tokens (and the chosen tokens' max |Δlogprob|, `lp`) against the
    base's, and the base's own under a regrouping (`own_lp`; its tokens always agree)."""
    judged_on = "tokens" if lp is None else "tokens+logprobs"
    own = {"token_agreement": 1.0, "rows_identical": 4, "rows": 4, "positions": 32}
    return {
        "layout": "fused",
        "backend": "vllm",
        "judged_on": judged_on,
        "measured": True,
        "exact": None,
        "token_agreement": agreement,
        "max_abs_logprob_diff": lp,
        "greedy_tokens_identical": arm_same and agreement == 1.0,
        "yardstick": {**own, "max_abs_logprob_diff": own_lp},
    }


@pytest.mark.parametrize(
    ("lp", "own_lp", "agreement", "dtype", "verdict"),
    [
        (5e-7, 2e-7, 1.0, "float32", WITHIN),  # fp32: identical tokens, Δlogprob under its tolerance
        (2e-3, 2e-7, 1.0, "float32", DISRUPTED),  # fp32: identical tokens but Δlogprob above the tolerance
        (None, None, 1.0, "float32", WITHIN),  # tokens alone (a backend without logprobs)
        (0.02, 0.01, 1.0, "bfloat16", WITHIN),  # WITHIN_RATIO x the base's own
        (0.03, 0.01, 1.0, "bfloat16", DISRUPTED),  # beyond it, though every token agrees
        (1e-3, 0.0, 1.0, "bfloat16", DISRUPTED),  # a base bit-stable under regrouping leaves no room
        (0.0, 0.0, 1.0, "bfloat16", EXACT),  # every chosen token's log-probability bit-equal, tokens too
        (0.0, 2e-7, 1.0, "float32", EXACT),
        (0.005, 0.01, 0.9, "bfloat16", DISRUPTED),  # tokens leave the base's sooner than its own do
        (0.005, None, 1.0, "bfloat16", WITHIN),  # a yardstick without logprobs: the token rule alone
    ],
)
def test_a_verdict_judged_on_tokens_and_logprobs_uses_both(lp, own_lp, agreement, dtype, verdict) -> None:
    judged = judge(_tokens_block(lp, own_lp, agreement), dtype)
    assert judged["verdict"] == verdict
    assert judged["ratio_to_yardstick"] == (pytest.approx(lp / own_lp) if lp is not None and own_lp else None)
    uses_logprobs = lp is not None and (dtype == "float32" or own_lp is not None)
    if verdict == EXACT:
        assert "log-probability bit-equal" in judged["criterion"]
    else:
        assert ("|Δlogprob|" in judged["criterion"]) == uses_logprobs, judged["criterion"]


def test_tokens_are_judged_against_the_measured_base_arm_too() -> None:
    # the check's own base pass agrees, the base arm's measured tokens do not: neither within nor exact
    assert judge(_tokens_block(5e-7, 2e-7, arm_same=False), "float32")["verdict"] == DISRUPTED
    assert judge(_tokens_block(0.0, 2e-7, arm_same=False), "float32")["verdict"] == DISRUPTED


def _pass(tokens: list[list[int]], shift: float = 0.0) -> dict:
    """A backend's pass: its tokens and each chosen token's log-probability (-1.0, moved by `shift`)."""
    return {"token_ids": tokens, "logprobs": [[-1.0 + shift] * len(row) for row in tokens]}


def test_the_base_on_otters_norm_path_is_a_second_harmless_change_under_a_generate_level_backend() -> None:
    # a bf16 engine whose regrouped base is bit-stable (0.0) would leave Otter's 0.015 no room; the base on
    # Otter's norm path (the integration arm) moves by 0.01: Otter is within the base's own numerics
    tokens = [[5, 6, 7, 8], [9, 10, 11, 12]]
    base = {"reference": _pass(tokens), "yardstick": {"change": "regrouped", **_pass(tokens)}}
    report = {"backend": "vllm", "greedy": _pass(tokens, 0.015)}
    digest = token_ids_hash(tokens)
    alone = generated_block(report, base, digest, "fused", "bfloat16")
    assert alone["verdict"] == DISRUPTED and list(alone["yardstick"]["changes"]) == ["batch_composition"]
    both = generated_block(report, base, digest, "fused", "bfloat16", _pass(tokens, 0.01))
    yardstick = both["yardstick"]
    assert list(yardstick["changes"]) == ["batch_composition", "norm_path"]
    assert yardstick["changes"]["norm_path"]["max_abs_logprob_diff"] == pytest.approx(0.01)
    assert yardstick["max_abs_logprob_diff"] == pytest.approx(0.01)  # the widest change
    assert both["verdict"] == WITHIN and both["ratio_to_yardstick"] == pytest.approx(1.5)
    validate_results(_results_with(both))
    assert "norm path" in non_disruption_line(_results_with(both))
    # a change that moves tokens sets the yardstick's token agreement (the lowest of the changes)
    moved = generated_block(report, base, digest, "fused", "bfloat16", _pass([[5, 6, 0, 0], tokens[1]]))
    assert moved["yardstick"]["token_agreement"] == pytest.approx(6 / 8)


def _results_with(block: dict, dtype: str = "bfloat16") -> dict:
    results = make_results(repeats=10)
    results["non_disruption"] = {**block, **judge(block, dtype)}
    return results


def test_schema_accepts_the_yardstick_and_refuses_a_malformed_one() -> None:
    results = _results_with(_block(0.02, 0.03))
    validate_results(results)  # raises if the schema refuses it
    malformed = {
        "unknown verdict": lambda nd: nd.update(verdict="fine"),
        "no changes": lambda nd: nd["yardstick"].pop("changes"),
        "empty changes": lambda nd: nd["yardstick"].update(changes={}),
        "negative deviation": lambda nd: nd["yardstick"]["changes"]["engine"].update(max_abs_logit_diff=-1),
        "change not named": lambda nd: nd["yardstick"]["changes"]["engine"].pop("change"),
        "one engine named": lambda nd: nd["yardstick"]["changes"]["engine"].update(engines=["eager"]),
        "negative seconds": lambda nd: nd["yardstick"]["changes"]["engine"].update(seconds=-1.0),
        "agreement above 1": lambda nd: nd["yardstick"].update(argmax_agreement=1.5),
    }
    for name, damage in malformed.items():
        broken = copy.deepcopy(results)
        damage(broken["non_disruption"])
        with pytest.raises((ValueError, jsonschema.ValidationError)):
            validate_results(broken)
            pytest.fail(f"the schema accepted a yardstick with {name}")


def test_summary_line_gives_the_verdict_beside_the_yardstick() -> None:
    line = non_disruption_line(_results_with(_block(0.06, 0.03)))
    assert line.startswith("non-disruption: within the base's own numerics over the whole workload")
    assert "Otter max |Δlogit| 6.00e-02" in line and "2.00x" in line
    assert "base vs itself (batch composition, engine eager vs compiled) max |Δlogit| 3.00e-02" in line
    disrupted = non_disruption_line(_results_with(_block(0.32, 0.03)))
    assert "DISRUPTED" in disrupted and "10.67x" in disrupted
    console = Console(width=400, record=True)
    console.print(disrupted)  # as the summary prints it: nothing of the line is taken for rich markup
    assert "(verdict rule, bfloat16: max |Δlogit| <= 2x" in console.export_text()


def test_gate_flags_a_worse_class_and_passes_the_same_class() -> None:
    exact = _results_with(_block(0.0, 0.03, exact=True))
    within = _results_with(_block(0.05, 0.03))
    disrupted = _results_with(_block(0.2, 0.03))
    same = check_runs(_results_with(_block(0.04, 0.03)), within)
    assert not [f for f in same.findings if f.metric == "non_disruption" and f.regressed]
    for was, now in ((exact, disrupted), (exact, within), (within, disrupted)):
        finding = next(f for f in check_runs(now, was).findings if f.metric == "non_disruption")
        assert finding.regressed and f"{finding.baseline} -> {finding.current}" in finding.evidence
    better = next(f for f in check_runs(within, disrupted).findings if f.metric == "non_disruption")
    assert not better.regressed


def test_gate_gives_the_logprob_figures_of_a_verdict_judged_on_them() -> None:
    within = _results_with(_tokens_block(0.01, 0.01))
    disrupted = _results_with(_tokens_block(0.03, 0.01))
    finding = next(f for f in check_runs(disrupted, within).findings if f.metric == "non_disruption")
    assert finding.regressed and "max |Δlogprob| 0.03, the base's own 0.01 (3.00x)" in finding.evidence


def _workload(batch_size: int, prompts: int = 3) -> Workload:
    rows = tuple(tuple(range(5 + i, 9 + 2 * i)) for i in range(prompts))
    return Workload(prompt_ids=rows, batch_size=batch_size, max_new_tokens=4, vocab_size=256, pad_token_id=0)


def test_the_other_batch_composition() -> None:
    assert composition_change(_workload(2))[0] == 1  # batched workload: each prompt alone
    assert composition_change(_workload(1))[0] == 3  # one at a time: the prompts merged, left-padded
    assert composition_change(_workload(1, prompts=1)) is None


def _float32_yardstick(batch_size: int, engine: str) -> dict:
    base = build_tiny_model("base").eval()
    workload = _workload(batch_size)
    yardstick = measure_yardstick(base, workload, torch.device("cpu"), engine)
    positions = sum(len(row) for row in workload.prompt_ids) + 3 * (workload.max_new_tokens - 1)
    assert set(yardstick["changes"]) == {"batch_composition", "engine"}
    for change in yardstick["changes"].values():
        assert change["positions"] == positions and change["seconds"] > 0
        # fp32: the base against itself moves within float rounding and never flips a decision
        assert change["max_abs_logit_diff"] < 1e-4 and change["argmax_agreement"] == 1.0
    return yardstick


@pytest.mark.parametrize("batch_size", [1, 2])
def test_yardstick_covers_every_prompt_position_and_decode_step_in_float32(batch_size: int) -> None:
    yardstick = _float32_yardstick(batch_size, "static")  # the cheap stand-in: static caches uncompiled
    assert yardstick["changes"]["engine"]["engines"] == ["eager", "static"]
    assert "the static stand-in was asked for" in yardstick["changes"]["engine"]["change"]


@pytest.mark.slow  # inductor compiles the tiny base's decode step in C++: ~15-60 s on a shared 2-core machine
def test_the_yardsticks_other_engine_is_the_compiled_engine() -> None:
    engine = _float32_yardstick(2, "compiled")["changes"]["engine"]
    assert engine["engines"] == ["eager", "compiled"] and engine["change"].startswith("eager vs compiled")


def test_a_bfloat16_run_of_the_tiny_profile_records_a_yardstick(tmp_path) -> None:
    small = {"num_prompts": 3, "max_new_tokens": 3, "batch_size": 1, "repeats": 1, "warmup": 0, "k": 4}
    config = resolve_run_config(
        "safety",
        out_dir=tmp_path,
        suite_overrides={**small, "dtype": "bfloat16"},
        isolation="inline",
        device="cpu",
        arms=["base", "otter-args"],
    )
    results = load_run(runner.run_suite(config).run_dir)  # validated against the schema
    nd = results["non_disruption"]
    yardstick = nd["yardstick"]
    assert set(yardstick["changes"]) == {"batch_composition", "engine"}
    # the tests' runs take the cheap stand-in (conftest); the run says which engine its yardstick ran
    assert results["config"]["yardstick_engine"] == "static"
    assert yardstick["changes"]["engine"]["engines"] == ["eager", "static"]
    compared = nd["checks"]["prompt_logits"]["positions"] + nd["checks"]["cached_decode_logits"]["positions"]
    assert all(change["positions"] == compared for change in yardstick["changes"].values())
    assert yardstick["max_abs_logit_diff"] == max(
        change["max_abs_logit_diff"] for change in yardstick["changes"].values()
    )
    assert nd["verdict"] in VERDICTS and nd["verdict"] == judge(nd, "bfloat16")["verdict"]
    assert "base vs itself" in non_disruption_line(results)


def test_the_gpu_checks_summary_prints_the_verdict_beside_the_yardstick() -> None:
    gpu_summary = load_script("gpu_summary")
    results = _results_with(_block(0.06, 0.03))
    line = gpu_summary.disruption_line("gpu-7b-compiled-packed", results)
    assert line.endswith(non_disruption_line(results)) and "base vs itself" in line


def test_a_run_without_the_check_says_why_in_its_line() -> None:
    from otterbench.run.assemble import _unchecked
    from otterbench.run.nondisruption import not_measured
    from otterbench.run.record import ArmRecord

    reasons = {
        "no Otter arm ran": [ArmRecord("base", "ok")],
        "no Otter arm finished": [ArmRecord("base", "ok"), ArmRecord.failed("otter-args", "died")],
    }
    for expected, records in reasons.items():
        results = make_results()
        results["non_disruption"] = not_measured("fused", _unchecked(records))
        validate_results(results)
        line = non_disruption_line(results)
        assert line.startswith("non-disruption: not measured (") and expected in line


def test_a_compile_that_fails_falls_back_to_the_stand_in_and_says_why(monkeypatch) -> None:
    from otterbench.backends.step import Engine

    def fail(self, fn, model):
        raise RuntimeError("inductor broke\nsecond line")

    monkeypatch.setattr(Engine, "_compile", fail)
    base = build_tiny_model("base").eval()
    engine = measure_yardstick(base, _workload(2), torch.device("cpu"), "compiled")["changes"]["engine"]
    assert engine["engines"] == ["eager", "static"]
    assert "torch.compile failed: RuntimeError: inductor broke)" in engine["change"]
