"""One side-by-side summary of the same suite run under several engines (e.g. eager, compiled, vllm).

    python scripts/engines_summary.py RUN_DIR_OR_RESULTS.json [...] [--json OUT.json] > OUT.md

Per engine: every arm's latency (p50 of the repeats), its extra total time over that engine's `base`, its
memory (peak RSS, and vLLM's own accounting where the engine reports it), and whether its tokens equal the
same decision's tokens under the first run's engine; then Otter's savings as each run recorded them
(results.json `savings`); then each arm of role "integration" (the integration tax) against `base`, repeat by
repeat. Reads only what the files hold; figures are the runs' own.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from otterbench.arms.registry import arm_decides_as
from otterbench.results.files import load_run
from otterbench.results.reference import reference_arm

MIB = 2**20


def _p50(arm: dict, key: str) -> float | None:
    return ((arm.get("latency") or {}).get(key) or {}).get("median")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1e3:,.1f}"


def _pct(value: float | None, ci: list | None = None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}%" + (f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "")


def _decision(name: str) -> str:
    """Arms that must decide alike share a key: the arm whose tokens each reproduces in exact arithmetic
    (ArmSpec.decides_as: args-optimized and args-vllm decide args-faithful's, base-plugin the base's), else
    its own name (args-token's token-level reward model decides its own tokens)."""
    return arm_decides_as(name) or name


def arm_figures(arm: dict, base: dict | None) -> dict[str, Any]:
    """The figures of one arm's row (seconds, bytes, fractions)."""
    total, base_total = _p50(arm, "total_s"), _p50(base, "total_s") if base else None
    memory = arm.get("memory") or {}
    engine = memory.get("engine") or {}
    return {
        "arm": arm["name"],
        "reference": arm is base,
        "status": arm["status"],
        "ttft_p50_s": _p50(arm, "ttft_s"),
        "tpot_p50_s": _p50(arm, "tpot_s"),
        "total_p50_s": total,
        "extra_total_vs_base": None if None in (total, base_total) else total / base_total - 1,
        "peak_rss_bytes": memory.get("peak_bytes"),
        "engine_weights_bytes": engine.get("weights_bytes"),
        "engine_kv_reserved_bytes": engine.get("kv_cache_reserved_bytes"),
        "token_ids_hash": arm.get("token_ids_hash"),
    }


def tax_figures(arm: dict, base: dict) -> dict[str, Any]:
    """A base-role arm against `base` of the same run: its total time over base's, repeat by repeat (the
    interleaved schedule measures repeat i of every arm in the same round), and its TPOT p50 over base's."""
    ratios = sorted(
        a / b for a, b in zip(arm["latency"]["total_s"]["samples"], base["latency"]["total_s"]["samples"])
    )
    tpot, base_tpot = _p50(arm, "tpot_s"), _p50(base, "tpot_s")
    return {
        "arm": arm["name"],
        "total_ratio_per_repeat": ratios,
        "total_ratio_median": ratios[len(ratios) // 2]
        if len(ratios) % 2
        else sum(ratios[len(ratios) // 2 - 1 : len(ratios) // 2 + 1]) / 2,
        "tpot_p50_ratio": None if None in (tpot, base_tpot) else tpot / base_tpot,
        "tokens_equal_base": arm.get("token_ids_hash") == base.get("token_ids_hash"),
    }


def summarise(paths: list[str]) -> list[dict[str, Any]]:
    """One entry per run: its engine, its arms' figures and its savings."""
    runs = []
    for path in paths:
        results = load_run(Path(path).parent if path.endswith(".json") else path)
        arms = {arm["name"]: arm for arm in results["arms"]}
        base = reference_arm(arms)
        runs.append(
            {
                "engine": results["config"]["engine"],
                "run_id": results["run_id"],
                "status": results["status"],
                "arms": [arm_figures(arm, base) for arm in results["arms"]],
                "tax": [
                    tax_figures(arm, base)
                    for arm in results["arms"]
                    if base and arm["role"] == "integration" and arm["status"] == "ok"
                ],
                "savings": [{key: saving[key] for key in SAVING_KEYS} for saving in results["savings"]],
            }
        )
    engines = [run["engine"] for run in runs]
    for index, run in enumerate(runs):  # "vllm #2": a second run under the same engine
        repeated = engines.count(run["engine"]) > 1
        run["label"] = (
            f"{run['engine']} #{engines[: index + 1].count(run['engine'])}" if repeated else run["engine"]
        )
    first = {_decision(a["arm"]): a["token_ids_hash"] for a in runs[0]["arms"]}
    for run in runs:
        for arm in run["arms"]:
            reference = first.get(_decision(arm["arm"]))
            arm["tokens_equal_first_engine"] = (
                None if reference is None else arm["token_ids_hash"] == reference
            )
    return runs


SAVING_KEYS = (
    "otter_arm",
    "separate_arm",
    "extra_time_saved_pct",
    "extra_time_saved_ci95",
    "extra_decode_time_saved_pct",
    "extra_space_saved_pct",
)


def markdown(runs: list[dict[str, Any]]) -> str:
    """The tables: per engine, one row per arm; then every run's savings."""
    lines = [
        "| engine | arm | TTFT p50 ms | TPOT p50 ms | total p50 ms | extra total vs base | peak RSS MiB "
        "| vLLM weights + KV MiB | tokens = " + runs[0]["engine"] + " |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        for arm in run["arms"]:
            extra, peak = arm["extra_total_vs_base"], arm["peak_rss_bytes"]
            engine_mib = [arm["engine_weights_bytes"], arm["engine_kv_reserved_bytes"]]
            cells = [
                run["label"],
                arm["arm"],
                _ms(arm["ttft_p50_s"]),
                _ms(arm["tpot_p50_s"]),
                _ms(arm["total_p50_s"]),
                "-" if extra is None or arm["reference"] else f"{extra:+.1%}",
                "-" if peak is None else f"{peak / MIB:,.0f}",
                "-" if None in engine_mib else f"{sum(engine_mib) / MIB:,.1f}",
                {True: "yes", False: "no", None: "-"}[arm["tokens_equal_first_engine"]],
            ]
            lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "| engine | Otter arm vs separate arm | extra time saved (total, CI95) | extra decode time saved "
        "| extra space saved |",
        "|---|---|---|---|---|",
    ]
    for run in runs:
        for saving in run["savings"]:
            lines.append(
                f"| {run['label']} | {saving['otter_arm']} vs {saving['separate_arm']} "
                f"| {_pct(saving['extra_time_saved_pct'], saving['extra_time_saved_ci95'])} "
                f"| {_pct(saving['extra_decode_time_saved_pct'])} | {_pct(saving['extra_space_saved_pct'])} |"
            )
    taxed = [(run["label"], tax) for run in runs for tax in run["tax"]]
    if taxed:
        lines += [
            "",
            "| engine | integration tax: arm / base | total time, median of per-repeat ratios (min-max) "
            "| TPOT p50 ratio | tokens = base |",
            "|---|---|---|---|---|",
        ]
        for engine, tax in taxed:
            ratios = tax["total_ratio_per_repeat"]
            lines.append(
                f"| {engine} | {tax['arm']} / base | {tax['total_ratio_median']:.3f} ({ratios[0]:.3f}-{ratios[-1]:.3f}) "
                f"| {tax['tpot_p50_ratio']:.3f} | {'yes' if tax['tokens_equal_base'] else 'no'} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders or their results.json, first = the reference")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    runs = summarise(args.runs)
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1) + "\n")
    sys.stdout.write(markdown(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
