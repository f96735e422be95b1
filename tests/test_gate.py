"""check / compare / export through the CLI: exit codes, named metrics, refused mismatches, one-line errors."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from factories import make_results, scale_arm_latency, write_run
from typer.testing import CliRunner

from otterbench.cli import app
from otterbench.results.files import describe_mismatch
from otterbench.results.findings import GateSettings, Verdict
from otterbench.results.gate import check_runs, local_speeds, parse_thresholds
from otterbench.results.stats import summarize

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def results() -> dict:
    return make_results(repeats=10)


def _regressed(result: object) -> set[tuple[str, str]]:
    return {(f.metric, f.subject) for f in result.regressions}


@pytest.fixture
def baseline_dir(tmp_path: Path, results: dict) -> Path:
    return write_run(tmp_path, results, "baseline")


def _check(run_dir: Path, baseline_dir: Path, *extra: str) -> object:
    return runner.invoke(app, ["check", str(run_dir), "--baseline", str(baseline_dir), *extra])


def test_check_run_against_itself_passes(tmp_path: Path, results: dict, baseline_dir: Path) -> None:
    outcome = _check(write_run(tmp_path, copy.deepcopy(results), "same"), baseline_dir)
    assert outcome.exit_code == 0, outcome.output
    assert "PASS" in outcome.output


def test_same_commit_other_noise_passes(results: dict) -> None:
    # another draw of the same arms' noise (seed 1): nothing changed, nothing may fail
    assert check_runs(make_results(repeats=10, seed=1), results).passed


def test_planted_otter_slowdown_fails_naming_otter_args(
    tmp_path: Path, results: dict, baseline_dir: Path
) -> None:
    slow = write_run(tmp_path, scale_arm_latency(results, 1.2), "slow")
    outcome = _check(slow, baseline_dir, "--json")
    assert outcome.exit_code == 1, outcome.output
    report = json.loads(outcome.output)
    regressed = {(f["metric"], f["subject"]) for f in report["findings"] if f["regressed"]}
    assert {("tpot", "otter-args"), ("total", "otter-args")} <= regressed
    assert not any(subject in ("base", "args-faithful", "args-optimized") for _, subject in regressed)
    human = _check(slow, baseline_dir)
    assert human.exit_code == 1 and "tpot (otter-args)" in human.output


def test_slower_separate_arm_fails_by_name_and_warns_on_the_risen_saving(results: dict) -> None:
    slow_baseline_arm = scale_arm_latency(results, 1.3, "args-faithful")
    # these arms' savings sit near 100%, so the rise is small: a 0.1-point limit shows the warning
    result = check_runs(slow_baseline_arm, results, parse_thresholds(["extra_time_saved=0.1"]))
    assert _regressed(result) == {("tpot", "args-faithful"), ("total", "args-faithful")}
    risen = [f for f in result.warnings if f.metric == "extra_time_saved"]
    assert [f.subject for f in risen] == ["args-faithful->otter-args"]
    assert "args-faithful (the separate arm) total +30.0%" in risen[0].evidence


def test_small_noise_does_not_fail(tmp_path: Path, results: dict, baseline_dir: Path) -> None:
    # 3% slower Otter: significant over 10 repeats but below the 5% threshold
    outcome = _check(write_run(tmp_path, scale_arm_latency(results, 1.03), "noise"), baseline_dir)
    assert outcome.exit_code == 0, outcome.output


def test_per_metric_threshold_override(results: dict) -> None:
    slow = scale_arm_latency(results, 1.3)
    loose = check_runs(slow, results, parse_thresholds(["tpot=50%", "total=50%", "extra_time_saved=40"]))
    assert loose.passed
    strict = check_runs(slow, results, parse_thresholds(["tpot=5%"]), max_regression=40.0)
    assert _regressed(strict) == {("tpot", "otter-args")}


def test_speed_factor_cancels_a_uniformly_slower_machine(results: dict) -> None:
    slower_machine = results
    for name in ("base", "args-faithful", "args-optimized", "otter-args"):
        slower_machine = scale_arm_latency(slower_machine, 1.5, name)
    absolute = check_runs(slower_machine, results)
    assert ("tpot", "base") in _regressed(absolute) and ("tpot", "otter-args") in _regressed(absolute)
    assert check_runs(slower_machine, results, settings=GateSettings(normalize=True)).passed
    # normalised, Otter alone 20% slower on top of the slower machine still fails, by name
    both = check_runs(scale_arm_latency(slower_machine, 1.2), results, settings=GateSettings(normalize=True))
    assert {subject for _, subject in _regressed(both)} >= {"otter-args"}
    assert not {"base", "args-faithful", "args-optimized"} & {subject for _, subject in _regressed(both)}


def _slow_rounds(results: dict, rounds: list[int], factor: float) -> dict:
    """A copy in which the given measured rounds ran `factor` times slower for every arm (a busy machine)."""
    slowed = copy.deepcopy(results)
    for arm in slowed["arms"]:
        repeats = len(arm["latency"]["total_s"]["samples"])
        for metric in ("tpot_s", "total_s"):
            samples = np.asarray(arm["latency"][metric]["samples"]).reshape(repeats, -1)
            samples[rounds] *= factor
            arm["latency"][metric] = summarize(samples.ravel())
    return slowed


def _drifting(results: dict, per_repeat: float) -> dict:
    """A copy measured on a machine that gets steadily slower: every measured repeat, in the interleaved
    order (round by round, arms in the file's order), runs `per_repeat` times slower than the one before."""
    slowed = copy.deepcopy(results)
    period = len(slowed["arms"])
    for position, arm in enumerate(slowed["arms"]):
        repeats = len(arm["latency"]["total_s"]["samples"])
        factors = per_repeat ** (position + period * np.arange(repeats))
        for metric in ("tpot_s", "total_s"):
            samples = np.asarray(arm["latency"][metric]["samples"]).reshape(repeats, -1)
            arm["latency"][metric] = summarize((samples * factors[:, None]).ravel())
    return slowed


def test_normalize_reads_the_speed_next_to_each_repeat_not_the_rounds() -> None:
    # Otter runs last in each round: on a machine slowing 4% per repeat it ran ~8% slower than its round's
    # control arms did on average, but at the speed read between the control repeats just before and after it
    baseline = make_results(repeats=10, schedule="interleaved")
    drifting = _drifting(make_results(repeats=10, seed=1, schedule="interleaved"), 1.04)
    normalized = check_runs(drifting, baseline, settings=GateSettings(normalize=True))
    assert normalized.passed, [(f.metric, f.subject, f.change) for f in normalized.regressions]
    otter = next(f for f in normalized.findings if (f.metric, f.subject) == ("tpot", "otter-args"))
    assert abs(otter.change) < 2.0
    slower_otter = scale_arm_latency(drifting, 1.2)
    caught = check_runs(slower_otter, baseline, settings=GateSettings(normalize=True))
    assert ("tpot", "otter-args") in _regressed(caught)


def test_an_arm_never_reads_the_machine_speed_from_its_own_repeats() -> None:
    # a control arm dividing by a speed that includes its own reading would cancel its own slowdown
    run = make_results(repeats=10, schedule="interleaved")
    slow_repeat = copy.deepcopy(run)
    base = next(arm for arm in slow_repeat["arms"] if arm["name"] == "base")
    totals = np.asarray(base["latency"]["total_s"]["samples"])
    totals[3] *= 2.0
    base["latency"]["total_s"] = summarize(totals)
    before, after = local_speeds(run, run, "total"), local_speeds(slow_repeat, run, "total")
    np.testing.assert_allclose(after["base"], before["base"])
    assert after["args-faithful"][3] > before["args-faithful"][3]  # the other arms do read it


def test_normalize_divides_each_interleaved_round_by_its_speed() -> None:
    baseline = make_results(repeats=10, schedule="interleaved")
    busy = _slow_rounds(make_results(repeats=10, seed=1, schedule="interleaved"), [0, 1, 2, 3, 4, 5], 2.0)
    assert not check_runs(busy, baseline).passed  # absolute: six of ten rounds twice as slow
    normalized = check_runs(busy, baseline, settings=GateSettings(normalize=True))
    assert normalized.passed
    otter = next(f for f in normalized.findings if (f.metric, f.subject) == ("tpot", "otter-args"))
    assert abs(otter.change) < 2.0 and "speed at each repeat" in otter.evidence


def test_too_few_repeats_are_inconclusive_never_pass() -> None:
    few = make_results(repeats=3)
    result = check_runs(scale_arm_latency(few, 1.5), few)
    # 3 repeats: even 50% slower cannot be significant at alpha 0.01, so the gate cannot decide
    assert not result.regressions and not result.passed and result.verdict is Verdict.INCONCLUSIVE
    power = next(f for f in result.undecided if f.metric == "power")
    assert "--preset ci" in power.evidence
    assert all(f.detectable == float("inf") for f in result.findings if f.metric in ("tpot", "total"))


def test_changed_decisions_fail(results: dict) -> None:
    changed = copy.deepcopy(results)
    changed["arms"][1]["token_ids_hash"] = "sha256:other-tokens"
    assert _regressed(check_runs(changed, results)) == {("decisions", "args-faithful")}


def test_fused_deviation_over_tolerance_fails(tmp_path: Path, results: dict) -> None:
    fused = copy.deepcopy(results)
    fused["non_disruption"].update(layout="fused", exact=False, max_abs_logit_diff=4e-5)
    fused_baseline = write_run(tmp_path, fused, "fused-baseline")
    deviated = copy.deepcopy(fused)
    deviated["non_disruption"]["max_abs_logit_diff"] = 0.02
    outcome = _check(write_run(tmp_path, deviated, "deviated"), fused_baseline)
    assert outcome.exit_code == 1 and "deviation (non_disruption (fused))" in outcome.output
    assert _check(write_run(tmp_path, fused, "fused-same"), fused_baseline).exit_code == 0
    loose = _check(write_run(tmp_path, deviated, "deviated"), fused_baseline, "--deviation-tolerance", "0.05")
    assert loose.exit_code == 0, loose.output


def test_lost_exactness_fails(tmp_path: Path, results: dict, baseline_dir: Path) -> None:
    inexact = copy.deepcopy(results)
    inexact["non_disruption"].update(exact=False, max_abs_logit_diff=3e-6)
    outcome = _check(write_run(tmp_path, inexact, "inexact"), baseline_dir)
    assert outcome.exit_code == 1 and "exactness" in outcome.output


def test_failed_arm_that_was_ok_fails(tmp_path: Path, results: dict, baseline_dir: Path) -> None:
    broken = copy.deepcopy(results)
    broken["arms"][3].update(
        status="failed", error="CUDA out of memory", latency=None, memory=None, energy=None
    )
    outcome = _check(write_run(tmp_path, broken, "failed"), baseline_dir, "--json")
    assert outcome.exit_code == 1
    regressed = [f for f in json.loads(outcome.output)["findings"] if f["regressed"]]
    assert [(f["metric"], f["subject"]) for f in regressed] == [("arm_status", "otter-args")]


def test_mismatched_workload_refused_unless_allowed(tmp_path: Path, baseline_dir: Path) -> None:
    other = write_run(tmp_path, make_results(repeats=10, batch_size=8), "other")
    refused = _check(other, baseline_dir)
    assert refused.exit_code == 2
    assert "batch_size: 4 vs 8" in refused.output
    allowed = _check(other, baseline_dir, "--allow-mismatch")
    assert allowed.exit_code == 0, allowed.output
    assert "batch_size: 4 vs 8" in allowed.output
    assert runner.invoke(app, ["compare", str(baseline_dir), str(other)]).exit_code == 2


@pytest.mark.parametrize(
    ("setting", "was", "now", "line"),
    [
        ("engine", "eager", "compiled", "engine: 'eager' vs 'compiled'"),
        ("isolation", "process", "inline", "isolation: 'process' vs 'inline'"),
        ("schedule", "interleaved", "sequential", "schedule: 'interleaved' vs 'sequential'"),
        ("cpu_threads", 1, 0, "cpu_threads: 1 vs 0"),
        ("device_map", None, "auto", "device_map: None vs 'auto'"),
        ("yardstick_engine", "compiled", "static", "yardstick_engine: 'compiled' vs 'static'"),
    ],
)
def test_runs_measured_under_other_settings_are_refused_unless_allowed(
    tmp_path: Path, setting: str, was: object, now: object, line: str
) -> None:
    base, other = make_results(repeats=10), make_results(repeats=10)
    for results, value in ((base, was), (other, now)):
        target = results if setting == "isolation" else results["config"]
        target[setting] = value
    refused = _check(write_run(tmp_path, other, "other"), write_run(tmp_path, base, "base"))
    assert refused.exit_code == 2 and line in refused.output
    assert refused.output.startswith("error: workloads differ:") and len(refused.output.splitlines()) == 1
    allowed = _check(tmp_path / "other", tmp_path / "base", "--allow-mismatch")
    assert allowed.exit_code == 0, allowed.output
    assert f"workload differs (allowed) {line}" in allowed.output
    assert runner.invoke(app, ["compare", str(tmp_path / "base"), str(tmp_path / "other")]).exit_code == 2


def test_a_file_from_before_a_run_setting_existed_still_compares(results: dict) -> None:
    recorded = copy.deepcopy(results)
    recorded["config"].update(engine="eager", schedule="sequential", cpu_threads=1, yardstick_engine="static")
    assert (
        describe_mismatch(results, recorded) == []
    )  # absent: eager then; the others not known, not compared
    compiled = copy.deepcopy(results)
    compiled["config"]["engine"] = "compiled"  # every run before --engine decoded eager
    assert describe_mismatch(results, compiled) == ["engine: 'eager' vs 'compiled'"]


@pytest.mark.parametrize("damage", ["truncated", "schema"])
def test_bad_results_file_is_one_line_exit_2(
    tmp_path: Path, baseline_dir: Path, damage: str, results: dict
) -> None:
    run_dir = write_run(tmp_path, copy.deepcopy(results), "damaged")
    path = run_dir / "results.json"
    if damage == "truncated":
        path.write_text(path.read_text()[:500])
    else:
        data = json.loads(path.read_text())
        data["arms"][0]["latency"]["tpot_s"]["samples"] = "fast"
        path.write_text(json.dumps(data))
    outcome = _check(run_dir, baseline_dir)
    assert outcome.exit_code == 2
    lines = [line for line in outcome.output.splitlines() if line.strip()]
    assert len(lines) == 1 and str(path) in lines[0]
    assert ("not valid JSON" if damage == "truncated" else "$.arms[0].latency.tpot_s.samples") in lines[0]


def test_bad_threshold_is_exit_2(tmp_path: Path, results: dict, baseline_dir: Path) -> None:
    outcome = _check(baseline_dir, baseline_dir, "--threshold", "latency=5%")
    assert outcome.exit_code == 2 and "tpot" in outcome.output
    assert _check(baseline_dir, baseline_dir, "--max-regression", "ten").exit_code == 2


def test_compare_shows_ratios(tmp_path: Path, results: dict, baseline_dir: Path) -> None:
    slow = write_run(tmp_path, scale_arm_latency(results, 1.3), "slow")
    outcome = runner.invoke(app, ["compare", str(baseline_dir), str(slow)])
    assert outcome.exit_code == 0, outcome.output
    assert "otter-args" in outcome.output and "1.3" in outcome.output


def test_export_github_is_valid_smaller_is_better_json(
    tmp_path: Path, results: dict, baseline_dir: Path
) -> None:
    out = tmp_path / "bench.json"
    outcome = runner.invoke(app, ["export", str(baseline_dir), "--format", "github", "--out", str(out)])
    assert outcome.exit_code == 0, outcome.output
    entries = json.loads(out.read_text())
    assert entries and all({"name", "unit", "value"} <= set(e) for e in entries)
    assert all(isinstance(e["value"], float) for e in entries)
    assert len({e["name"] for e in entries}) == len(entries)
    remaining = next(
        e
        for e in entries
        if e["name"] == "safety/otter-args vs args-faithful (faithful) extra time remaining"
    )
    assert remaining["value"] == pytest.approx(100 - results["savings"][0]["extra_time_saved_pct"])
    assert runner.invoke(app, ["export", str(baseline_dir), "--format", "csv"]).exit_code == 2


def _with_otter_peak(results: dict, extra_bytes: int) -> dict:
    """A copy whose Otter arm peaks `extra_bytes` higher, savings recomputed from the arms."""
    from otterbench.results.files import compute_savings

    changed = copy.deepcopy(results)
    for arm in changed["arms"]:
        if arm["role"] == "otter":
            arm["memory"]["peak_bytes"] += extra_bytes
    changed["savings"] = compute_savings(changed["arms"])
    return changed


def _space_findings(run: dict, baseline: dict, space_noise_pct: float) -> list:
    settings = GateSettings(space_noise_pct=space_noise_pct)
    return [
        f for f in check_runs(run, baseline, settings=settings).findings if f.metric == "extra_space_saved"
    ]


def test_space_regression_needs_growth_beyond_the_noise_floor(results: dict) -> None:
    base_peak = next(a for a in results["arms"] if a["name"] == "base")["memory"]["peak_bytes"]
    separate_extra = min(
        a["memory"]["peak_bytes"] - base_peak for a in results["arms"] if a["role"] == "separate"
    )
    grown = _with_otter_peak(results, int(0.5 * separate_extra))  # the saving drops by ~50 points
    above_floor = _space_findings(grown, results, space_noise_pct=1.0)
    assert all(-f.change > 10 for f in above_floor)
    assert all(f.regressed for f in above_floor) and "noise floor" in above_floor[0].evidence
    generous = 200 * separate_extra / base_peak  # a floor twice the growth: the same drop is not evidence
    below_floor = _space_findings(grown, results, space_noise_pct=generous)
    assert all(-f.change > 10 for f in below_floor) and not any(f.regressed for f in below_floor)


def _check_into_reader(run_dir: Path, extra: tuple[str, ...], reader: str) -> subprocess.CompletedProcess:
    """`otterbench check RUN --baseline RUN` piped into a reader that stops early: one that closed its end
    before anything was written (every write then fails), or one that reads one line (`| head -1`)."""
    command = [sys.executable, "-m", "otterbench", "check", str(run_dir), "--baseline", str(run_dir), *extra]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    if reader == "closed at once":
        read_end, write_end = os.pipe()
        os.close(read_end)
        with subprocess.Popen(command, stdout=write_end, stderr=subprocess.PIPE, env=env) as proc:
            os.close(write_end)
            stderr = proc.stderr.read()
        return subprocess.CompletedProcess(command, proc.returncode, None, stderr)
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as proc:
        first = proc.stdout.readline()
        proc.stdout.close()
        stderr = proc.stderr.read()
    return subprocess.CompletedProcess(command, proc.returncode, first, stderr)


@pytest.mark.parametrize("reader", ["closed at once", "one line"])
@pytest.mark.parametrize("extra", [(), ("--json",)], ids=["table", "json"])
def test_a_reader_that_stops_early_leaves_the_exit_code_the_verdicts(
    tmp_path: Path, extra: tuple[str, ...], reader: str
) -> None:
    short = write_run(tmp_path, make_results(repeats=5), "short")  # 5 repeats: INCONCLUSIVE against itself
    done = _check_into_reader(short, extra, reader)
    assert done.returncode == 3, done.stderr.decode()
    assert done.stderr == b""  # no traceback, no "Exception ignored" from the interpreter's last flush
