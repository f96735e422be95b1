"""How often would the CI gate cry wolf? Gate repeated runs of one commit and configuration against each other.

Runs the same suite N times (same commit, same settings, same machine), then calls
`otterbench.results.gate.check_runs(run, baseline)` on every ordered pair (i, j), i != j, at the default thresholds.
Every such failure is a false alarm: nothing changed between the runs but the noise. Next to the gate's own
verdict (threshold AND significance) it counts how often each monitored figure would have fired on the
threshold alone, from the same Finding fields (`change`, `threshold`), to show what the significance test buys.

    .venv/bin/python scripts/false_alarm_study.py --runs 10 --out /tmp/false-alarms
    .venv/bin/python scripts/false_alarm_study.py --reuse /tmp/false-alarms/safety   # re-gate, no re-run

Prints a table and writes the raw numbers (every run's medians, every pair's findings) as JSON.
"""

from __future__ import annotations

import argparse
import itertools
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from otterbench.exits import Exit
from otterbench.results.files import load_run, write_json_atomic
from otterbench.results.gate import DEFAULT_ALPHA, DEFAULT_THRESHOLDS, THRESHOLD_METRICS, Finding, check_runs
from otterbench.run.config import resolve_run_config
from otterbench.run.pipeline import run_suite

METRICS = (*THRESHOLD_METRICS, "exactness", "arm_status")


def fires_on_threshold(finding: Finding) -> bool:
    """The verdict without the significance test: only the threshold on the same change decides."""
    if finding.metric not in THRESHOLD_METRICS:
        return finding.regressed  # exactness and arm_status have no threshold and no test
    if finding.change is None:
        return False  # "not comparable": the gate never fails on it
    # otter_tpot worsens upwards (percent slower); the savings worsen downwards (percentage points lost)
    worsening = finding.change if finding.metric == "otter_tpot" else -finding.change
    return worsening > finding.threshold


def worsening(finding: Finding) -> float | None:
    """How far the figure moved in the bad direction (negative: it improved); None when not comparable."""
    if finding.change is None:
        return None
    return finding.change if finding.metric == "otter_tpot" else -finding.change


def measure_runs(args: argparse.Namespace, console: Console) -> list[Path]:
    """Run the suite `args.runs` times with identical settings; return the run folders in order."""
    run_dirs = []
    for i in range(args.runs):
        config = resolve_run_config(
            args.suite,
            out_dir=args.out,
            profile=args.profile,
            suite_overrides={
                "num_prompts": args.num_prompts,
                "max_new_tokens": args.max_new_tokens,
                "repeats": args.repeats,
                "warmup": args.warmup,
            },
            device=args.device,
            isolation=args.isolation,
        )
        start = time.perf_counter()
        outcome = run_suite(config)
        elapsed_s = time.perf_counter() - start
        console.print(
            f"run {i + 1}/{args.runs}: {outcome.run_dir} ({elapsed_s:.0f} s, exit {outcome.exit_code})"
        )
        if outcome.exit_code != Exit.OK:
            raise SystemExit(
                f"run {outcome.run_dir} did not finish cleanly (exit {outcome.exit_code}); stopping"
            )
        run_dirs.append(outcome.run_dir)
    return run_dirs


def gate_all_pairs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """check_runs on every ordered pair (run i gated against baseline j, i != j), with both verdicts."""
    pairs = []
    for i, j in itertools.permutations(range(len(runs)), 2):
        result = check_runs(runs[i], runs[j])
        findings = [
            {**asdict(f), "fires_on_threshold": fires_on_threshold(f), "worsening": worsening(f)}
            for f in result.findings
        ]
        pairs.append({"run": i, "baseline": j, "passed": result.passed, "findings": findings})
    return pairs


def tally(pairs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per metric: findings checked, gate failures, threshold-only failures, the largest worsening seen."""
    rows = {}
    for metric in METRICS:
        found = [f for pair in pairs for f in pair["findings"] if f["metric"] == metric]
        moves = [f["worsening"] for f in found if f["worsening"] is not None]
        rows[metric] = {
            "findings": len(found),
            "gate_failures": sum(f["regressed"] for f in found),
            "threshold_only_failures": sum(f["fires_on_threshold"] for f in found),
            "largest_worsening": max(moves) if moves else None,
            "threshold": next((f["threshold"] for f in found if f["threshold"] is not None), None),
        }
    return rows


def run_summary(run: dict[str, Any]) -> dict[str, Any]:
    """The figures of one run the gate reads: each arm's median tpot and total, peak bytes, the savings."""
    arms = {
        arm["name"]: {
            "tpot_median_s": arm["latency"]["tpot_s"]["median"],
            "total_median_s": arm["latency"]["total_s"]["median"],
            "peak_bytes": (arm["memory"] or {}).get("peak_bytes"),
        }
        for arm in run["arms"]
        if arm["status"] == "ok"
    }
    savings = {
        s["separate_arm"]: {"time_pct": s["extra_time_saved_pct"], "space_pct": s["extra_space_saved_pct"]}
        for s in run["savings"]
    }
    return {"run_id": run["run_id"], "arms": arms, "savings": savings}


def print_table(console: Console, rows: dict[str, dict[str, Any]], n_runs: int, n_pairs: int) -> None:
    """The study's table: one row per monitored metric."""
    table = Table(title=f"false alarms: {n_runs} runs, {n_pairs} ordered pairs gated at default thresholds")
    for column in (
        "metric",
        "findings",
        "fail (gate)",
        "fail (threshold only)",
        "largest worsening",
        "limit",
    ):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for metric, row in rows.items():
        unit = "%" if metric == "otter_tpot" else " pp"
        largest = row["largest_worsening"]
        table.add_row(
            metric,
            str(row["findings"]),
            str(row["gate_failures"]),
            str(row["threshold_only_failures"]),
            "-" if largest is None else f"{largest:+.1f}{unit}",
            "-" if row["threshold"] is None else f"{row['threshold']:g}{unit}",
        )
    console.print(table)


def parse_args() -> argparse.Namespace:
    """The study's options: the workload, how many runs, where to write."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="repeated runs of the same configuration")
    parser.add_argument("--suite", default="safety")
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--num-prompts", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--isolation", default="process", help="process (as CI runs it) or inline")
    parser.add_argument("--out", type=Path, default=Path("results/false-alarms"), help="results root")
    parser.add_argument(
        "--json", type=Path, default=None, help="raw numbers (default: OUT/false_alarms.json)"
    )
    parser.add_argument("--reuse", type=Path, default=None, help="gate the runs already in this folder")
    args = parser.parse_args()
    if args.runs < 2:
        parser.error(f"--runs={args.runs} is too small: pairs need at least 2 runs")
    return args


def main() -> None:
    """Measure (or reuse) the runs, gate every ordered pair, print the table, write the JSON."""
    args = parse_args()
    console = Console(width=120)  # logs and docs are not terminals; keep the table on one line per row
    if args.reuse:
        run_dirs = sorted(p.parent for p in args.reuse.glob("*/results.json"))
    else:
        run_dirs = measure_runs(args, console)
    runs = [load_run(path) for path in run_dirs]
    pairs = gate_all_pairs(runs)
    rows = tally(pairs)
    failed = sum(not pair["passed"] for pair in pairs)
    print_table(console, rows, len(runs), len(pairs))
    console.print(f"pairs that failed the gate: {failed} of {len(pairs)}")
    out_json = args.json or (args.reuse or args.out) / "false_alarms.json"
    write_json_atomic(
        out_json,
        {
            "settings": {
                key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()
            },
            "defaults": {"thresholds": DEFAULT_THRESHOLDS, "alpha": DEFAULT_ALPHA},
            "run_dirs": [str(path) for path in run_dirs],
            "runs": [run_summary(run) for run in runs],
            "per_metric": rows,
            "pairs_checked": len(pairs),
            "pairs_failed": failed,
            "pairs": pairs,
        },
    )
    console.print(f"raw numbers: {out_json}")


if __name__ == "__main__":
    main()
