"""The accel suite end to end: same tokens as base, draft metrics in a schema-valid results.json, the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from otterbench.results.decisions import decision_pairs
from otterbench.results.files import load_run
from otterbench.results.report.accel import accel_section, plot_accel
from otterbench.results.report.plots import save_figure
from otterbench.run import pipeline
from otterbench.run.config import resolve_run_config

SMALL = {"num_prompts": 3, "max_new_tokens": 6, "repeats": 3, "warmup": 0}


@pytest.fixture(scope="module")
def accel_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("accel")
    config = resolve_run_config("accel", out_dir=out, suite_overrides=SMALL, isolation="inline", device="cpu")
    return pipeline.run_suite(config)


def test_speculative_arms_give_the_base_tokens(accel_run) -> None:
    results = load_run(accel_run.run_dir)  # validates against the schema
    assert accel_run.exit_code == 0 and results["config"]["draft_length"] == 3
    arms = {arm["name"]: arm for arm in results["arms"]}
    assert list(arms) == ["base", "spec-separate", "otter-spec"]
    assert all(arm["status"] == "ok" and arm["new_tokens"] == 6 for arm in arms.values())
    assert arms["spec-separate"]["token_ids_hash"] == arms["base"]["token_ids_hash"]
    assert arms["otter-spec"]["token_ids_hash"] == arms["base"]["token_ids_hash"]
    assert [(pair.arm, pair.same) for pair in decision_pairs(results)] == [
        ("spec-separate", True),
        ("otter-spec", True),
    ]
    assert "speculation" not in arms["base"]


def test_results_carry_the_draft_metrics(accel_run) -> None:
    results = load_run(accel_run.run_dir)
    arms = {arm["name"]: arm for arm in results["arms"]}
    base_peak = arms["base"]["memory"]["peak_bytes"]
    for name, decider in (("spec-separate", "llm"), ("otter-spec", "otter")):
        arm, spec = arms[name], arms[name]["speculation"]
        assert spec["new_tokens"] == 3 * 6
        assert spec["forwards_per_token"] == arm["calls"][decider] / spec["new_tokens"]
        assert spec["acceptance"] == sum(spec["accepted_by_position"]) / sum(spec["proposed_by_position"])
        assert len(spec["acceptance_by_position"]) == spec["draft_length"]
        assert spec["extra_peak_bytes"] == spec["peak_bytes"] - base_peak
        base_median = arms["base"]["latency"]["total_s"]["median"]
        assert spec["speedup"] == pytest.approx(base_median / arm["latency"]["total_s"]["median"])
        assert spec["speedup_ci95"] is None or spec["speedup_ci95"][0] <= spec["speedup_ci95"][1]
    assert arms["otter-spec"]["speculation"]["draft_forwards_per_token"] == 0
    assert arms["spec-separate"]["speculation"]["draft_forwards_per_token"] > 0
    (saving,) = results["savings"]
    assert (saving["separate_arm"], saving["otter_arm"]) == ("spec-separate", "otter-spec")
    assert set(saving["time_per_token_s"]) == set(saving["extra_peak_bytes"]) == {"base", "separate", "otter"}


def test_report_draws_speedup_memory_and_acceptance(accel_run, tmp_path: Path) -> None:
    results = load_run(accel_run.run_dir)
    figure = plot_accel(results)
    speedup, memory, acceptance = figure.axes
    assert [tick.get_text() for tick in speedup.get_xticklabels()] == ["base", "spec-separate", "otter-spec"]
    assert len(memory.patches) == 3 and {line.get_label() for line in acceptance.lines} == {
        "spec-separate",
        "otter-spec",
    }
    assert len(save_figure(figure, tmp_path, "accel")) == 2
    section = "\n".join(accel_section(results))
    assert "## Speculative decoding" in section and "otter-spec vs spec-separate" in section
