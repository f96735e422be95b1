"""Power of the CI gate: false alarms between repeated runs of one commit, and planted slowdowns it catches.

Takes N saved runs of one commit and configuration (produce them with `otterbench run --preset ci`, see
docs/regression-gate.md) and gates every ordered pair (baseline i, run j), i != j, with
`otterbench.results.gate.check_runs`:
- unplanted: nothing changed between the runs, so every failing pair is a false alarm;
- planted: run j's samples of one arm (every ttft, tpot and total sample) are multiplied by 1 + s, savings
  recomputed, for each slowdown s; a pair counts as detected when the gate fails, and as named when a
  regressed finding names that arm (its own tpot/total, or a saving of its pair).

    python scripts/power_study.py /tmp/gate-study/runs/safety --json /tmp/gate-study/power.json

Prints one table per mode (absolute latency, the gate's default; and --normalize, the machine's speed read
from the control arms) and writes every pair's verdicts as JSON. `--first N` keeps only each run's first N
measured repeats: what a shorter run length would have caught, from the same runs.
"""

from __future__ import annotations

import argparse
import copy
import itertools
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from otterbench.results.files import compute_savings, load_run, write_json_atomic
from otterbench.results.findings import CheckResult, GateSettings, Verdict
from otterbench.results.gate import check_runs
from otterbench.results.stats import summarize

SLOWDOWNS_PCT = (5, 10, 20, 30)


def plant_slowdown(results: dict, arm_name: str, slowdown_pct: float) -> dict:
    """A copy of `results` whose arm `arm_name` is `slowdown_pct` % slower in every latency sample."""
    planted = copy.deepcopy(results)
    factor = 1.0 + slowdown_pct / 100.0
    for arm in planted["arms"]:
        if arm["name"] == arm_name:
            for metric in ("ttft_s", "tpot_s", "total_s"):
                arm["latency"][metric] = summarize(np.asarray(arm["latency"][metric]["samples"]) * factor)
    planted["savings"] = compute_savings(planted["arms"], n_boot=200)  # the gate reads point values only
    return planted


def first_repeats(results: dict, count: int) -> dict:
    """A copy of `results` keeping each arm's first `count` measured repeats, as if the run stopped there.

    Every latency series holds its repeats one after another in equal shares (per token, per batch or one
    per repeat), so the first `count` shares are the first `count` repeats.
    """
    cut = copy.deepcopy(results)
    cut["config"]["repeats"] = count
    for arm in cut["arms"]:
        if arm["status"] != "ok":
            continue
        repeats = len(arm["latency"]["total_s"]["samples"])
        if count > repeats:
            raise SystemExit(f"{results['run_id']}: --first {count} but {arm['name']} has {repeats} repeats")
        for metric in ("ttft_s", "tpot_s", "total_s"):
            samples = arm["latency"][metric]["samples"]
            arm["latency"][metric] = summarize(samples[: len(samples) // repeats * count])
    cut["savings"] = compute_savings(cut["arms"], n_boot=200)
    return cut


def names_arm(result: CheckResult, arm_name: str) -> bool:
    """Whether a regressed finding names the arm: its own latency, or a saving of its pair."""
    return any(arm_name in finding.subject.split("->") for finding in result.regressions)


def gate_pairs(runs: list[dict], settings: GateSettings, arm: str | None, slowdown: float) -> dict[str, Any]:
    """Every ordered pair gated, the run side planted (if `arm`): failures, namings, what fired."""
    failed, undecided, named, fired = 0, 0, 0, {}
    planted = [plant_slowdown(run, arm, slowdown) if arm else run for run in runs]
    for i, j in itertools.permutations(range(len(runs)), 2):
        current = planted[j]
        result = check_runs(current, runs[i], settings=settings)
        failed += result.verdict is Verdict.FAIL
        undecided += result.verdict is Verdict.INCONCLUSIVE
        named += bool(arm) and names_arm(result, arm)
        for finding in result.regressions:
            key = f"{finding.metric} ({finding.subject})"
            fired[key] = fired.get(key, 0) + 1
    pairs = len(runs) * (len(runs) - 1)
    return {"pairs": pairs, "failed": failed, "inconclusive": undecided, "named": named, "fired": fired}


def study(runs: list[dict], settings: GateSettings, otter_arm: str, baseline_arm: str) -> list[dict]:
    """The rows of one table: unplanted pairs, then each slowdown planted in Otter, then in the baseline."""
    rows = [{"planted": "nothing (false alarms)", **gate_pairs(runs, settings, None, 0.0)}]
    for arm in (otter_arm, baseline_arm):
        for slowdown in SLOWDOWNS_PCT:
            rows.append({"planted": f"{arm} +{slowdown}%", **gate_pairs(runs, settings, arm, slowdown)})
    return rows


def render(console: Console, title: str, rows: list[dict]) -> None:
    table = Table(title=title)
    columns = ("planted", "pairs", "gate failed", "inconclusive", "named the arm", "most frequent finding")
    for column in columns:
        table.add_column(
            column, justify="left" if column in ("planted", "most frequent finding") else "right"
        )
    for row in rows:
        top = max(row["fired"].items(), key=lambda kv: kv[1], default=("-", 0))
        share = f"{row['failed']} ({100 * row['failed'] / row['pairs']:.0f}%)"
        named = (
            "-"
            if row["planted"].startswith("nothing")
            else f"{row['named']} ({100 * row['named'] / row['pairs']:.0f}%)"
        )
        undecided = f"{row['inconclusive']} ({100 * row['inconclusive'] / row['pairs']:.0f}%)"
        table.add_row(row["planted"], str(row["pairs"]), share, undecided, named, f"{top[0]} x{top[1]}")
    console.print(table)


def describe_runs(console: Console, runs: list[dict]) -> list[dict]:
    """Each run's repeats and its per-arm median total, so the reader sees the drift the gate faced."""
    described = []
    for run in runs:
        totals = {
            arm["name"]: round(1e3 * float(np.median(arm["latency"]["total_s"]["samples"])), 1)
            for arm in run["arms"]
            if arm["status"] == "ok"
        }
        console.print(f"{run['run_id']}: repeats {run['config']['repeats']}, median total ms {totals}")
        described.append(
            {"run_id": run["run_id"], "repeats": run["config"]["repeats"], "median_total_ms": totals}
        )
    return described


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs_dir", type=Path, help="folder holding the run folders (OUT/<suite>)")
    parser.add_argument("--otter-arm", default="otter-args")
    parser.add_argument("--baseline-arm", default="args-faithful", help="the separate-model arm to slow down")
    parser.add_argument("--json", type=Path, default=None, help="write every row here")
    parser.add_argument(
        "--first",
        type=int,
        default=None,
        help="keep each run's first N measured repeats (a shorter run length)",
    )
    args = parser.parse_args()
    console = Console(width=150)
    paths = sorted(p for p in args.runs_dir.iterdir() if (p / "results.json").is_file())
    runs = [run for run in (load_run(path) for path in paths) if run["status"] == "complete"]
    if args.first:
        runs = [first_repeats(run, args.first) for run in runs]
    if len(runs) < 2:
        raise SystemExit(
            f"{args.runs_dir}: needs at least 2 run folders with results.json, found {len(runs)}"
        )
    described = describe_runs(console, runs)
    report = {}
    for mode, settings in (("absolute", GateSettings()), ("normalized", GateSettings(normalize=True))):
        rows = study(runs, settings, args.otter_arm, args.baseline_arm)
        render(console, f"gate at default thresholds, {mode} latency: {len(runs)} runs", rows)
        report[mode] = rows
    if args.json:
        document = {"runs": described, "first_repeats": args.first, "modes": report}
        write_json_atomic(args.json, document)


if __name__ == "__main__":
    main()
