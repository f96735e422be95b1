"""One table from the results.json files of a GPU check: per arm cost, Otter's savings, non-disruption.

    python scripts/gpu_summary.py RESULTS.json [RESULTS.json ...]

Reads only what the files hold (the figures computed here are ratios and differences of recorded ones: the
ridge point, Otter's overhead over base against its extra-bytes share, each decode saving's distance to its
limit; and unit conversions), so the table can be rebuilt on any machine from the committed files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from otterbench.results.decisions import decisions_line
from otterbench.results.reference import reference_arm
from otterbench.results.summary import non_disruption_line
from otterbench.results.summary_efficiency import ridge_point

MIB = 2**20


def _ms(latency: dict, key: str) -> str:
    value = (latency.get(key) or {}).get("median")
    return "-" if value is None else f"{value * 1e3:.2f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _interval(pair: list | None) -> str:
    return "" if not pair else f" [{pair[0]:.1f}, {pair[1]:.1f}]"


def arm_rows(name: str, data: dict) -> list[str]:
    rows = []
    for arm in data["arms"]:
        if arm.get("status") != "ok":
            rows.append(f"{name:28} {arm['name']:15} {arm.get('status')}: {str(arm.get('error'))[:60]}")
            continue
        memory, efficiency = arm.get("memory") or {}, arm.get("efficiency") or {}
        mbu = efficiency.get("mbu")
        rows.append(
            f"{name:28} {arm['name']:15} {_ms(arm['latency'], 'tpot_s'):>9} {_ms(arm['latency'], 'ttft_s'):>9}"
            f" {(memory.get('weights_bytes') or 0) / MIB:>11,.1f} {(memory.get('peak_bytes') or 0) / MIB:>10,.0f}"
            f" {memory.get('method', '-'):>6} {'-' if mbu is None else f'{100 * mbu:.1f}%':>6}"
            f" {efficiency.get('bound') or '-':>7} {arm.get('compile_s') or 0:>7.1f}"
        )
    return rows


def overhead_rows(name: str, data: dict) -> list[str]:
    """Each Otter arm's per-token time over the base's beside its bytes per step over the base's: the share
    of time it adds, against the share of bytes it adds (1.00x: it costs exactly its extra bytes)."""
    arms = {arm["name"]: arm for arm in data["arms"] if arm.get("status") == "ok" and arm.get("efficiency")}
    base = reference_arm(arms)
    rows = []
    for arm in arms.values():
        if base is None or arm.get("role") != "otter":
            continue
        time_share = arm["latency"]["tpot_s"]["median"] / base["latency"]["tpot_s"]["median"] - 1
        bytes_share = arm["efficiency"]["bytes_per_step"] / base["efficiency"]["bytes_per_step"] - 1
        ratio = f"{time_share / bytes_share:.2f}x" if bytes_share > 0 else "-"
        rows.append(
            f"{name:28} {arm['name']} over base: TPOT {100 * time_share:+.1f}%, bytes per step "
            f"{100 * bytes_share:+.1f}%: {ratio} its extra-bytes share"
        )
    return rows


def saving_rows(name: str, data: dict) -> list[str]:
    rows = []
    for saving in data.get("savings") or []:
        predicted = saving.get("predicted") or {}
        limit = {k: v for k, v in predicted.items() if isinstance(v, (int, float))}
        rows.append(
            f"{name:28} {saving['otter_arm']} vs {saving['separate_arm']:15}"
            f" space {_pct(saving.get('extra_space_saved_pct'))}"
            f"  time {_pct(saving.get('extra_time_saved_pct'))}{_interval(saving.get('extra_time_saved_ci95'))}"
            f"  decode {_pct(saving.get('extra_decode_time_saved_pct'))}"
            f"{_interval(saving.get('extra_decode_time_saved_ci95'))}"
            f"  predicted {', '.join(f'{k} {v:.1f}%' for k, v in limit.items()) or '-'}"
            f"{_to_limit(saving.get('extra_decode_time_saved_pct'), limit.get('time_roofline_pct'))}"
        )
    return rows


def _to_limit(measured: float | None, limit: float | None) -> str:
    """How far the measured decode saving sits from its limit, in points."""
    return "" if measured is None or limit is None else f"  decode - limit {measured - limit:+.1f} points"


def peaks_line(name: str, data: dict) -> str:
    """The device's peaks as the run measured them, and the ridge point its limits were priced at."""
    env = data.get("environment") or {}
    ridge = ridge_point(env)
    if ridge is None:
        return f"{name:28} peaks: not measured"
    compute = env["compute_peak"]
    return (
        f"{name:28} peaks: {env['memory_bandwidth']['peak_bytes_per_s'] / 1e9:,.1f} GB/s, "
        f"{_flops(compute['peak_flops_per_s'])} {compute.get('dtype')} (ridge {ridge:.1f} FLOP/byte)"
    )


def _flops(per_s: float) -> str:
    return f"{per_s / 1e12:,.1f} TFLOP/s" if per_s >= 1e12 else f"{per_s / 1e9:,.1f} GFLOP/s"


def checkpoint_line(name: str, data: dict) -> str:
    otter = data.get("otter") or {}
    seconds = otter.get("checkpoint_build_s")
    built = "-" if seconds is None else f"{seconds:.1f} s"
    return (
        f"{name:28} layout {otter.get('layout')}: inserted {otter.get('inserted_parameters') or 0:,} parameters, "
        f"checkpoint build {built}"
    )


def disruption_line(name: str, data: dict) -> str:
    """The run's verdict beside the base's own deviation (its yardstick), as the run's summary prints it."""
    if not data.get("non_disruption"):
        return f"{name:28} non-disruption: not measured"
    return f"{name:28} {non_disruption_line(data)}"


def main(paths: list[str]) -> None:
    runs = [(Path(p).stem, json.loads(Path(p).read_text())) for p in paths]
    if not runs:
        sys.exit("no results files")
    env = runs[0][1].get("environment") or {}
    print(
        f"device: {env.get('gpu_name') or env.get('cpu')} · torch {env.get('torch')} · "
        f"transformers {env.get('transformers')} · commit {str(env.get('git_commit'))[:10]}"
    )
    for name, data in runs:
        print(peaks_line(name, data))
    print(
        f"{'run':28} {'arm':15} {'TPOT p50':>9} {'TTFT p50':>9} {'weights MiB':>11} {'peak MiB':>10}"
        f" {'method':>6} {'MBU':>6} {'bound':>7} {'compile':>7}"
    )
    for name, data in runs:
        print("\n".join(arm_rows(name, data)))
    print()
    for name, data in runs:
        print("\n".join(overhead_rows(name, data)))
    print()
    for name, data in runs:
        print("\n".join(saving_rows(name, data)))
    print()
    for name, data in runs:
        print(checkpoint_line(name, data))
        print(disruption_line(name, data))
        decisions = decisions_line(data)  # args-optimized = args-faithful, or why not
        if decisions is not None:
            print(f"{name:28} {decisions[0]}")


if __name__ == "__main__":
    main(sys.argv[1:])
