"""results: the schema accepts factory results and refuses broken ones; atomic writes; derived tables."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
from factories import make_results, write_run

from otterbench.results.files import (
    ResultsError,
    arms_frame,
    compute_savings,
    describe_mismatch,
    load_run,
    validate_results,
    workload_signature,
    write_json_atomic,
)
from otterbench.results.headline import time_saving
from otterbench.results.reference import reference_name
from otterbench.results.stats import summarize


@pytest.fixture(scope="module")
def results() -> dict:
    return make_results()


def test_factory_results_validate(results: dict) -> None:
    validate_results(results)
    assert {s["separate_arm"] for s in results["savings"]} == {"args-faithful", "args-optimized"}


def test_missing_field_is_one_line_naming_the_path(results: dict) -> None:
    broken = copy.deepcopy(results)
    del broken["arms"][1]["latency"]["tpot_s"]["p90"]
    with pytest.raises(ResultsError) as info:
        validate_results(broken, source="run/results.json")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("run/results.json: $.arms[1].latency")
    assert "'p90' is a required property" in message


def test_wrong_type_and_bad_enum_are_refused(results: dict) -> None:
    wrong_type = copy.deepcopy(results)
    wrong_type["config"]["batch_size"] = "four"
    with pytest.raises(ResultsError, match=r"\$\.config\.batch_size"):
        validate_results(wrong_type)
    bad_status = copy.deepcopy(results)
    bad_status["arms"][0]["status"] = "done"
    with pytest.raises(ResultsError, match=r"\$\.arms\[0\]"):
        validate_results(bad_status)


def test_failed_arm_must_say_why_and_ok_arm_needs_latency(results: dict) -> None:
    failed = copy.deepcopy(results)
    failed["arms"][3].update(status="failed", latency=None, error=None)
    with pytest.raises(ResultsError, match=r"\$\.arms\[3\]\.error"):
        validate_results(failed)
    failed["arms"][3]["error"] = "CUDA out of memory"
    validate_results(failed)
    ok_without_latency = copy.deepcopy(results)
    ok_without_latency["arms"][0]["latency"] = None
    with pytest.raises(ResultsError, match=r"\$\.arms\[0\]\.latency"):
        validate_results(ok_without_latency)


def test_sample_count_must_match_n(results: dict) -> None:
    broken = copy.deepcopy(results)
    broken["arms"][2]["latency"]["total_s"]["n"] += 1
    with pytest.raises(ResultsError, match=r"\$\.arms\[2\]\.latency\.total_s: n=6 but 5 samples"):
        validate_results(broken)


def test_load_run_errors_are_one_line(tmp_path: Path, results: dict) -> None:
    with pytest.raises(ResultsError, match="no such results file"):
        load_run(tmp_path / "absent")
    run_dir = write_run(tmp_path, results)
    assert load_run(run_dir) == results
    (run_dir / "results.json").write_text('{"schema_version": 1, "run_id": ')
    with pytest.raises(ResultsError, match="not valid JSON") as info:
        load_run(run_dir)
    assert "\n" not in str(info.value)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(ValueError):
        write_json_atomic(path, {"a": math.nan})  # NaN is not JSON: refused mid-write
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temp file left behind


def test_arms_frame_one_row_per_arm(results: dict) -> None:
    frame = arms_frame(results)
    assert list(frame["name"]) == [arm["name"] for arm in results["arms"]]
    otter = results["arms"][3]
    row = frame.set_index("name").loc["otter-args"]
    assert row["tpot_p50_s"] == otter["latency"]["tpot_s"]["median"]
    assert row["peak_bytes"] == otter["memory"]["peak_bytes"]
    assert row["inserted_weights_bytes"] == otter["memory"]["weights_by_component"]["inserted"]


def test_savings_null_with_reason_when_separate_is_not_slower(results: dict) -> None:
    arms = copy.deepcopy(results["arms"])
    base_total = arms[0]["latency"]["total_s"]["samples"]
    arms[2]["latency"]["total_s"] = summarize(
        [t * 0.9 for t in base_total]
    )  # args-optimized faster than base
    saving = {s["separate_arm"]: s for s in compute_savings(arms, n_boot=100)}["args-optimized"]
    assert saving["extra_time_saved_pct"] is None and saving["extra_time_saved_ci95"] is None
    assert any("not slower than base" in note for note in saving["notes"])
    assert saving["extra_space_saved_pct"] == pytest.approx(results["savings"][1]["extra_space_saved_pct"])


def test_describe_mismatch_names_each_field_with_both_values(results: dict) -> None:
    other = make_results(batch_size=8)
    other["workload"]["model_fingerprints"]["reward"] = "rm-other"
    lines = describe_mismatch(results, other)
    assert "batch_size: 4 vs 8" in lines
    assert "model_fingerprints.reward: 'rm-7b-def' vs 'rm-other'" in lines
    assert describe_mismatch(results, copy.deepcopy(results)) == []
    assert workload_signature(results)["num_prompts"] == 8


def test_the_reference_arm_is_found_by_its_recorded_role_not_its_name(results: dict) -> None:
    renamed = copy.deepcopy(results)
    renamed["arms"][0]["name"] = "llm-alone"  # role "base": the reference under another name
    assert reference_name(renamed["arms"]) == "llm-alone"
    savings = compute_savings(renamed["arms"], n_boot=100)
    expected = compute_savings(results["arms"], n_boot=100)
    assert [s["extra_time_saved_pct"] for s in savings] == [s["extra_time_saved_pct"] for s in expected]
    assert [s["extra_space_saved_pct"] for s in savings] == [s["extra_space_saved_pct"] for s in expected]
    renamed["savings"] = savings
    assert time_saving(renamed, savings[0]).value == time_saving(results, expected[0]).value
    # a file written without roles: its arm named "base" is the reference, read in one place
    unroled = [{k: v for k, v in arm.items() if k != "role"} for arm in results["arms"]]
    assert reference_name(unroled) == "base"
    assert reference_name([{"name": "llm-alone"}]) is None
