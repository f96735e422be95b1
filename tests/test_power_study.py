"""scripts/power_study.py: it plants what it says, cuts runs to their first repeats, counts the verdicts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from factories import make_results
from repo_scripts import SCRIPTS, load_script

from otterbench.results.findings import GateSettings


@pytest.fixture(scope="module")
def study():
    return load_script("power_study")


@pytest.fixture(scope="module")
def runs() -> list[dict]:
    return [make_results(repeats=10, seed=seed, schedule="interleaved") for seed in range(3)]


def _samples(results: dict, arm: str, metric: str) -> np.ndarray:
    return np.asarray(next(a for a in results["arms"] if a["name"] == arm)["latency"][metric]["samples"])


def test_plant_slows_only_the_named_arm(study, runs: list[dict]) -> None:
    planted = study.plant_slowdown(runs[0], "otter-args", 20)
    for metric in ("ttft_s", "tpot_s", "total_s"):
        np.testing.assert_allclose(
            _samples(planted, "otter-args", metric), 1.2 * _samples(runs[0], "otter-args", metric)
        )
        np.testing.assert_array_equal(_samples(planted, "base", metric), _samples(runs[0], "base", metric))
    was = {s["separate_arm"]: s["extra_time_saved_pct"] for s in runs[0]["savings"]}
    now = {s["separate_arm"]: s["extra_time_saved_pct"] for s in planted["savings"]}
    assert all(now[arm] < was[arm] for arm in was)  # a slower Otter saves less


def test_first_repeats_keeps_the_first_repeats_of_every_series(study, runs: list[dict]) -> None:
    cut = study.first_repeats(runs[0], 4)
    assert cut["config"]["repeats"] == 4
    for metric in ("tpot_s", "total_s"):
        whole = _samples(runs[0], "args-faithful", metric)
        kept = _samples(cut, "args-faithful", metric)
        assert kept.size == whole.size // 10 * 4
        np.testing.assert_array_equal(kept, whole[: kept.size])
    with pytest.raises(SystemExit):
        study.first_repeats(runs[0], 11)


def test_gate_pairs_counts_false_alarms_and_planted_detections(study, runs: list[dict]) -> None:
    settings = GateSettings()
    unplanted = study.gate_pairs(runs, settings, None, 0.0)
    assert unplanted["pairs"] == 6 and unplanted["failed"] == 0
    planted = study.gate_pairs(runs, settings, "otter-args", 30)
    assert planted["failed"] == planted["named"] == 6
    assert planted["fired"]["tpot (otter-args)"] == 6


def test_plant_slowdown_script_writes_a_run_the_gate_fails(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from factories import write_run

    from otterbench.results.files import load_run
    from otterbench.results.gate import check_runs

    baseline = make_results(repeats=10)
    run_dir = write_run(tmp_path, baseline, "run")
    script = SCRIPTS / "plant_slowdown.py"
    out = tmp_path / "slow5x"
    args = [sys.executable, str(script), str(run_dir), str(out), "--arm", "all", "--slowdown", "400"]
    root = str(SCRIPTS.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    subprocess.run(args, check=True, capture_output=True, env=env)
    slow = load_run(out)
    for before, after in zip(baseline["arms"], slow["arms"], strict=True):
        ratio = np.asarray(after["latency"]["total_s"]["samples"]) / before["latency"]["total_s"]["samples"]
        assert np.allclose(ratio, 5.0)
    assert check_runs(slow, baseline).verdict.value == "fail"
