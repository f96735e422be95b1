"""The gate's three verdicts on synthetic runs: PASS, FAIL and INCONCLUSIVE, each with its own exit code."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from factories import jitter_repeats, make_results, scale_arm_latency, write_run
from typer.testing import CliRunner

from otterbench.cli import app
from otterbench.exits import EXIT_HELP, Exit
from otterbench.results.findings import Verdict
from otterbench.results.gate import check_runs
from otterbench.results.stats import summarize

runner = CliRunner()


@pytest.fixture(scope="module")
def results() -> dict:
    return make_results(repeats=10)


def _check(tmp_path: Path, run: dict, baseline: dict, *extra: str) -> object:
    run_dir, base_dir = write_run(tmp_path, run, "run"), write_run(tmp_path, baseline, "baseline")
    return runner.invoke(app, ["check", str(run_dir), "--baseline", str(base_dir), *extra])


def _rows(output: str, metric: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(f"│ {metric}")]


def test_pass_exit_0_shows_each_detectable_change_beside_its_limit(tmp_path: Path, results: dict) -> None:
    outcome = _check(tmp_path, make_results(repeats=10, seed=1), results)
    assert outcome.exit_code == Exit.OK, outcome.output
    assert "PASS" in outcome.output and "detectable" in outcome.output
    result = check_runs(make_results(repeats=10, seed=1), results)
    latency = [f for f in result.findings if f.metric in ("tpot", "total")]
    assert latency and all(f.detectable <= f.threshold for f in latency)
    for f in latency:  # the row prints the very detectable change the verdict used
        assert f"smallest detectable slowdown {f.detectable:.1f}% vs limit 5%" in f.evidence


def test_fail_exit_1_for_a_planted_slowdown(tmp_path: Path, results: dict) -> None:
    outcome = _check(tmp_path, scale_arm_latency(results, 1.3), results, "--json")
    assert outcome.exit_code == Exit.FAILED, outcome.output
    report = json.loads(outcome.output)
    assert report["verdict"] == "fail" and report["passed"] is False


def test_a_five_times_slower_machine_fails_in_absolute_mode(results: dict) -> None:
    slower = results
    for arm in ("base", "args-faithful", "args-optimized", "otter-args"):
        slower = scale_arm_latency(slower, 5.0, arm)
    result = check_runs(slower, results)
    assert result.verdict is Verdict.FAIL
    assert {f.subject for f in result.regressions if f.metric == "total"} == {
        "base",
        "args-faithful",
        "args-optimized",
        "otter-args",
    }


def test_noisy_short_runs_are_inconclusive_exit_3_not_pass(tmp_path: Path) -> None:
    # 8 repeats on a machine whose speed moves +-40% from repeat to repeat: a 5% limit is out of reach
    baseline = jitter_repeats(make_results(repeats=8), sigma=0.4, seed=1)
    run = jitter_repeats(make_results(repeats=8, seed=1), sigma=0.4, seed=2)
    result = check_runs(run, baseline)
    assert result.verdict is Verdict.INCONCLUSIVE and not result.passed
    undecided = [f for f in result.undecided if f.metric in ("tpot", "total")]
    assert undecided and all(f.detectable > f.threshold for f in undecided)
    outcome = _check(tmp_path, run, baseline)
    assert outcome.exit_code == Exit.INCONCLUSIVE, outcome.output
    assert "INCONCLUSIVE" in outcome.output and "PASS" not in outcome.output
    assert any("inconclusive" in row for row in _rows(outcome.output, "tpot"))


def test_a_saving_drop_beyond_its_limit_without_significance_is_not_ok() -> None:
    # noisy rounds: the Otter arm's saving drops by more than 5 points but the rank test cannot tell
    baseline = jitter_repeats(make_results(repeats=6), sigma=0.2, seed=10)
    run = jitter_repeats(scale_arm_latency(make_results(repeats=6, seed=1), 1.3), sigma=0.2, seed=20)
    result = check_runs(run, baseline)
    savings = [f for f in result.findings if f.metric == "extra_time_saved"]
    dropped = [f for f in savings if f.change is not None and -f.change > f.threshold and not f.regressed]
    assert dropped, [(f.change, f.detectable) for f in savings]
    assert all(f.inconclusive and "INCONCLUSIVE" in f.evidence for f in dropped)
    assert result.verdict is not Verdict.PASS


@pytest.mark.parametrize("status", ["interrupted", "partial"])
def test_an_incomplete_run_is_inconclusive(tmp_path: Path, results: dict, status: str) -> None:
    cut = copy.deepcopy(results)
    cut["status"] = status
    result = check_runs(cut, results)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert [(f.metric, f.subject) for f in result.undecided] == [("run_status", "run")]
    assert _check(tmp_path, cut, results).exit_code == Exit.INCONCLUSIVE
    # the baseline side counts too
    assert check_runs(results, cut).verdict is Verdict.INCONCLUSIVE


def test_an_arm_that_never_ran_is_inconclusive_one_that_failed_fails(results: dict) -> None:
    stopped = copy.deepcopy(results)
    stopped["status"] = "interrupted"
    stopped["arms"][3].update(status="not_run", error="interrupted before it ran", latency=None, memory=None)
    result = check_runs(stopped, results)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert ("arm_status", "otter-args") in {(f.metric, f.subject) for f in result.undecided}
    stopped["arms"][3]["status"] = "failed"
    assert check_runs(stopped, results).verdict is Verdict.FAIL


def test_a_saving_over_unequal_rounds_is_undecided(results: dict) -> None:
    cut = copy.deepcopy(results)
    otter = next(arm for arm in cut["arms"] if arm["name"] == "otter-args")
    samples = otter["latency"]["total_s"]["samples"][:7]
    otter["latency"]["total_s"] = summarize(samples)
    otter["latency"]["tpot_s"] = summarize(otter["latency"]["tpot_s"]["samples"][: 7 * 32])
    cut["config"]["repeats"] = 10
    savings = [f for f in check_runs(cut, results).findings if f.metric == "extra_time_saved"]
    assert savings and all(f.inconclusive and "do not share their rounds" in f.evidence for f in savings)


def test_an_arm_short_of_its_repeats_is_inconclusive(results: dict) -> None:
    short = copy.deepcopy(results)
    short["config"]["repeats"] = 40  # asked for 40, measured 10: a run cut short that still says complete
    finding = next(f for f in check_runs(short, results).undecided if f.metric == "run_status")
    assert "otter-args 10/40" in finding.evidence


def test_an_incomplete_run_cannot_fail_on_latency_but_fails_on_a_crash(results: dict) -> None:
    slow = scale_arm_latency(results, 1.5)
    slow["status"] = "interrupted"
    result = check_runs(slow, results)
    # the slowdown in the repeats it measured is shown as regressed, but a cut run decides nothing
    assert ("total", "otter-args") in {(f.metric, f.subject) for f in result.regressions}
    assert result.verdict is Verdict.INCONCLUSIVE and not result.decisive
    slow["arms"][1].update(status="failed", error="RuntimeError: boom", latency=None, memory=None)
    crashed = check_runs(slow, results)
    assert crashed.verdict is Verdict.FAIL
    assert [(f.metric, f.subject) for f in crashed.decisive] == [("arm_status", "args-faithful")]


def test_inconclusive_has_its_own_documented_exit_code() -> None:
    assert Exit.INCONCLUSIVE == 3 and "3 a check was inconclusive" in EXIT_HELP
    assert "inconclusive" in runner.invoke(app, ["--help"]).output
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "| 3 |" in readme


def test_json_never_carries_infinity(tmp_path: Path) -> None:
    few = make_results(repeats=3)
    outcome = _check(tmp_path, few, few, "--json")
    assert outcome.exit_code == Exit.INCONCLUSIVE
    report = json.loads(outcome.output, parse_constant=lambda name: pytest.fail(f"{name} in --json"))
    assert report["verdict"] == "inconclusive"
    assert all(f["detectable"] is None for f in report["findings"] if f["metric"] == "tpot")


def test_run_says_before_measuring_whether_it_can_feed_the_gate(tmp_path: Path) -> None:
    args = ["run", "--suite", "safety", "--arms", "base", "--out", str(tmp_path), "--isolation", "inline"]
    args += [
        "--device",
        "cpu",
        "--num-prompts",
        "2",
        "--max-new-tokens",
        "2",
        "--repeats",
        "1",
        "--warmup",
        "0",
    ]
    outcome = runner.invoke(app, args)
    assert outcome.exit_code == 0, outcome.output
    lines = outcome.output.splitlines()
    gate = [i for i, line in enumerate(lines) if line.startswith("gate: --repeats 1 cannot feed")]
    assert len(gate) == 1 and lines[gate[0]].endswith("`--preset ci` (40 repeats) can")  # one line
    summary = next(i for i, line in enumerate(lines) if "TPOT p50 ms" in line)
    assert gate[0] < summary


def _judged(results: dict) -> dict:
    """A copy whose non-disruption block carries a verdict, as every run writes it now."""
    judged = copy.deepcopy(results)
    judged["non_disruption"].update(verdict="exact", measured=True, criterion="every logit torch.equal")
    return judged


def _unmeasured(results: dict, former: bool = False) -> dict:
    """A copy whose non-disruption check did not run: as the run writes it now, or (former) as files did
    before `measured` and `verdict` existed."""
    from otterbench.run.nondisruption import not_measured

    cut = copy.deepcopy(results)
    block = not_measured("split", "no Otter arm finished")
    if former:
        block = {key: block[key] for key in ("layout", "exact", "max_abs_logit_diff", "argmax_agreement")}
    cut["non_disruption"] = block
    return cut


@pytest.mark.parametrize("former", [False, True], ids=["verdict classes", "former rules"])
def test_non_disruption_not_measured_is_inconclusive_never_a_regression(
    tmp_path: Path, results: dict, former: bool
) -> None:
    baseline = results if former else _judged(results)
    for run, base, side in ((_unmeasured(results, former), baseline, "run"),
                            (baseline, _unmeasured(results, former), "baseline")):  # fmt: skip
        result = check_runs(run, base)
        assert result.verdict is Verdict.INCONCLUSIVE and not result.regressions
        (finding,) = [f for f in result.findings if f.metric in ("non_disruption", "exactness")]
        assert finding.metric == ("exactness" if former else "non_disruption")
        assert finding.inconclusive and f"not measured in the {side}" in finding.evidence
    outcome = _check(tmp_path, _unmeasured(results, former), baseline)
    assert outcome.exit_code == Exit.INCONCLUSIVE, outcome.output
    assert "FAIL" not in outcome.output and "not measured in the run" in outcome.output


def test_a_run_stopped_before_any_arm_finished_is_inconclusive(tmp_path: Path, results: dict) -> None:
    stopped = _unmeasured(results)
    stopped["status"] = "interrupted"
    for arm in stopped["arms"]:
        arm.update(status="not_run", error="stopped before it ran", latency=None, memory=None, energy=None)
    stopped["savings"] = [
        dict(s, extra_time_saved_pct=None, extra_space_saved_pct=None) for s in stopped["savings"]
    ]
    outcome = _check(tmp_path, stopped, _judged(results), "--allow-mismatch")
    assert outcome.exit_code == Exit.INCONCLUSIVE, outcome.output
    assert "REGRESSED" not in outcome.output and "INCONCLUSIVE" in outcome.output


def test_an_unmeasured_check_does_not_hide_a_real_failure(results: dict) -> None:
    crashed = _unmeasured(results)
    crashed["arms"][1].update(status="failed", error="RuntimeError: boom", latency=None, memory=None)
    result = check_runs(crashed, _judged(results))
    assert result.verdict is Verdict.FAIL
    assert [(f.metric, f.subject) for f in result.decisive] == [("arm_status", "args-faithful")]


@pytest.mark.parametrize("kind", ["time", "space"])
def test_a_saving_null_in_one_run_only_is_inconclusive_not_a_regression(results: dict, kind: str) -> None:
    key = f"extra_{kind}_saved_pct"
    nulled = copy.deepcopy(results)
    nulled["savings"][0][key] = None  # e.g. the separate arm cost no extra over base in this run
    for run, base in ((nulled, results), (results, nulled)):
        (finding, *_) = [f for f in check_runs(run, base).findings if f.metric == f"extra_{kind}_saved"]
        assert finding.inconclusive and not finding.regressed and "INCONCLUSIVE" in finding.evidence
    both = next(f for f in check_runs(nulled, nulled).findings if f.metric == f"extra_{kind}_saved")
    assert not both.inconclusive and not both.regressed  # null in both: nothing was monitored either time
