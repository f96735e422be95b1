"""report.md rendered from results dicts: the claim, measured savings, arms, non-disruption, caveats."""

from __future__ import annotations

from otterbench.arms.registry import baseline_kind
from otterbench.results.decisions import decisions_line
from otterbench.results.disruption_verdict import was_measured
from otterbench.results.figures import FIGURES, figure_ms, ms_text
from otterbench.results.headline import (
    MIN_REPEATS_FOR_INTERVAL,
    PAPER_SAVED_PCT,
    decode_saving,
    space_saving,
    speedup_lines,
    time_saving,
)
from otterbench.results.report.quality import quality_section
from otterbench.results.summary import non_disruption_line

PAPER_CLAIM = (
    "The paper (Yuan et al., arXiv 2408.10764) reports that Otter saves "
    f'"up to {PAPER_SAVED_PCT["space"]}% extra space and {PAPER_SAVED_PCT["time"]}% '
    'extra time" against steering with separate models. *Extra* is the cost over the base LLM alone: '
    "`extra(arm) = X(arm) - X(base)` and `saved = 100 * (1 - extra(otter) / extra(separate))`, with X the "
    "peak memory (space) or the median total time of the workload (time)."
)


def format_bytes(value: float | None) -> str:
    """Bytes as MiB/GiB text, or n/a."""
    if value is None:
        return "n/a"
    return f"{value / (1 << 30):.2f} GiB" if abs(value) >= (1 << 30) else f"{value / (1 << 20):.1f} MiB"


def format_seconds(value: float | None) -> str:
    """Seconds as ms below one second, or n/a."""
    if value is None:
        return "n/a"
    return f"{value * 1e3:.2f} ms" if abs(value) < 1 else f"{value:.3f} s"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _headline(results: dict) -> list[str]:
    """A speculative run's speedups first; then one sentence per baseline kind: the best measured savings,
    set beside the paper's figures."""
    lines = [f"- Speculative decoding: {line}." for line in speedup_lines(results)]
    for kind in ("faithful", "optimized", "token-level"):
        chosen = [s for s in results["savings"] if baseline_kind(s["separate_arm"]) == kind]
        if not chosen:
            continue
        space = max(chosen, key=lambda s: s["extra_space_saved_pct"] or float("-inf"))
        time = max(chosen, key=lambda s: s["extra_time_saved_pct"] or float("-inf"))
        lines.append(
            f"- Against the {kind} separate-model arm(s): up to {space_saving(results, space).text} extra "
            f"space and {time_saving(results, time).text} extra time saved "
            f"(paper: {PAPER_SAVED_PCT['space']}% and {PAPER_SAVED_PCT['time']}%)."
        )
    return [*lines, ""] if lines else []


def savings_section(results: dict) -> list[str]:
    """Measured savings against each separate arm, faithful and optimized, with CI95 and their caveats."""
    rows = []
    for s in results["savings"]:
        space, time = space_saving(results, s), time_saving(results, s)
        recorded = [note for note in s.get("notes") or [] if note not in space.notes + time.notes]
        notes = [f"space: {n}" for n in space.notes] + [f"time: {n}" for n in time.notes]
        notes += [f"decode (TPOT): {n}" for n in decode_saving(results, s).notes] + recorded
        row = [s["otter_arm"], s["separate_arm"], baseline_kind(s["separate_arm"]), space.text, time.text]
        rows.append([*row, "; ".join(notes) or "-"])
    if not rows:
        return [
            "## Measured savings",
            "",
            "No separate/Otter pair ran in this suite: no saving to report.",
            "",
        ]
    header = [
        "Otter arm",
        "separate arm",
        "baseline",
        "extra space saved",
        "extra time saved [CI95]",
        "notes",
    ]
    return [
        "## Measured savings",
        "",
        *_headline(results),
        *_table(header, rows),
        "",
        "Time CI95: BCa bootstrap over measured repeats (scipy.stats.bootstrap; each round's base, separate and "
        f"Otter totals resampled together), shown only from {MIN_REPEATS_FOR_INTERVAL} repeats per arm. Space "
        "has no interval: peak memory is one reading per arm. Above 100% means Otter measured cheaper than base; "
        "below 0% that Otter's extra exceeded the separate arm's; either is called measurement noise only when "
        "its interval reaches the boundary.",
        "",
    ]


def arms_section(results: dict) -> list[str]:
    """Per-arm table: status, tokens, memory, latency summaries (median, p90, n), energy."""
    rows = []
    for arm in results["arms"]:
        memory, latency = arm["memory"] or {}, arm["latency"]
        energy = (arm["energy"] or {}).get("j_per_token")
        if latency is None:
            timing = ["n/a"] * 3
        else:
            timing = [
                ms_text(figure_ms(arm, "ttft")),
                f"{ms_text(figure_ms(arm, 'tpot'))} / {ms_text(figure_ms(arm, 'tpot_p90'))}",
                f"{ms_text(figure_ms(arm, 'total'))} (n={latency['total_s']['n']})",
            ]
        status = arm["status"] if arm["status"] == "ok" else f"**{arm['status']}**: {arm['error']}"
        rows.append(
            [
                arm["name"],
                arm["role"],
                status,
                str(arm["new_tokens"]),
                format_bytes(memory.get("peak_bytes")),
                format_bytes(memory.get("weights_bytes")),
                *timing,
                "n/a" if energy is None else f"{energy:.3g} J",
            ]
        )
    header = [
        "arm",
        "role",
        "status",
        "new tokens/prompt",
        "peak memory",
        "weights",
        FIGURES["ttft"].label,
        f"{FIGURES['tpot'].name} / {FIGURES['tpot_p90'].name} ms",
        FIGURES["total"].label,
        "energy/token",
    ]
    return ["## Arms", "", *_table(header, rows), ""]


def non_disruption_section(results: dict) -> list[str]:
    """Whether the Otter model's original logits equal the base model's, judged against the base's own numerics."""
    if not was_measured(results["non_disruption"]):
        reason = results["non_disruption"].get("reason", "no Otter arm ran")
        return ["## Non-disruption", "", f"Not measured: {reason}.", "", *_decisions(results)]
    line = non_disruption_line(results).removeprefix("non-disruption: ")
    return ["## Non-disruption", "", line[0].upper() + line[1:] + ".", "", *_decisions(results)]


def _decisions(results: dict) -> list[str]:
    """Whether arms that make one decision in different forms chose the same tokens (results/decisions.py)."""
    decisions = decisions_line(results)
    if decisions is None:
        return []
    line = decisions[0].removeprefix("decisions ")
    return [f"Decisions {line}.", ""]


def environment_section(results: dict) -> list[str]:
    """Environment and the config fields that shape the workload."""
    env, config = results["environment"], results["config"]
    rows = [[key, f"`{value}`"] for key, value in env.items()]
    keys = (
        "profile",
        "arms",
        "num_prompts",
        "batch_size",
        "max_new_tokens",
        "k",
        "weight",
        "alpha",
        "dtype",
        "device",
        "seed",
        "repeats",
        "warmup",
    )
    rows += [[f"config.{key}", f"`{config.get(key)}`"] for key in (*keys, "filter_p")]
    rows += [["isolation", f"`{results['isolation']}`"], ["run status", f"`{results['status']}`"]]
    return ["## Environment and config", "", *_table(["field", "value"], rows), ""]


def caveats(results: dict) -> list[str]:
    """Plain statements of what limits these numbers, derived from the results themselves."""
    config, notes = results["config"], []
    if config["profile"] == "tiny":
        notes.append(
            "Tiny profile: models have random weights and toy sizes; the figures show the mechanics, "
            "not the paper-scale savings, and the generated text means nothing."
        )
    if not results["otter"]["distilled"]:
        notes.append(
            "Undistilled Otter: the inserted parameters were not trained, so the steering signal is "
            "noise; time and memory are still the real cost of the architecture."
        )
    if str(config["device"]).startswith("cpu"):
        notes.append(
            "CPU timings: relative costs on a CPU differ from a GPU's (no kernel-launch overhead, "
            "compute-bound matrix products); do not read them as GPU figures."
        )
    if results["isolation"] == "inline":
        notes.append(
            "Inline isolation: all arms ran in one process, so allocator caches and warm state carry "
            "from arm to arm; peak memory in particular may be off."
        )
    methods = {(arm["memory"] or {}).get("method") for arm in results["arms"]} - {None}
    if "rss" in methods:
        notes.append(
            "Memory by process RSS: includes the Python runtime and allocator slack, not only tensors."
        )
    if results["environment"]["git_dirty"]:
        notes.append("Uncommitted changes: the code that produced these numbers is not exactly `git_commit`.")
    if results["status"] != "complete":
        notes.append(f"Run status `{results['status']}`: not every arm finished.")
    for arm in results["arms"]:
        if arm["status"] != "ok":
            notes.append(f"Arm `{arm['name']}` {arm['status'].replace('_', ' ')}: {arm['error']}")
    return notes


def render_run(results: dict, figures: list[str], quality: dict | None = None) -> str:
    """The full report.md of one run; `figures` are image file names relative to the report."""
    lines = [
        f"# otterbench report: suite `{results['suite']}`, run `{results['run_id']}`",
        "",
        f"Created {results['created_utc']}; rebuilt from results.json only.",
        "",
        "## The claim",
        "",
        PAPER_CLAIM,
        "",
        *savings_section(results),
        *arms_section(results),
        *quality_section(quality, results),
        *non_disruption_section(results),
        *environment_section(results),
        "## Caveats",
        "",
        *([f"- {note}" for note in caveats(results)] or ["- None detected from the results file."]),
        "",
        "## Figures",
        "",
        *[f"![{name}]({name})" for name in figures],
        "",
    ]
    return "\n".join(lines)


def render_sweep(runs: list[dict], field: str | None, run_links: dict[str, str], figures: list[str]) -> str:
    """report.md over several runs: one row per run and pair, ordered by the swept field."""
    rows = []
    for run in runs:
        for s in run["savings"]:
            rows.append(
                [
                    f"[{run['run_id']}]({run_links[run['run_id']]})",
                    str(run["config"].get(field, "-")) if field else "-",
                    f"{s['otter_arm']} vs {s['separate_arm']}",
                    space_saving(run, s).text,
                    time_saving(run, s).text,
                ]
            )
    header = ["run", field or "swept field", "pair", "extra space saved", "extra time saved [CI95]"]
    varying = f"The runs vary `{field}`." if field else "No swept config field varies among these runs."
    lines = [
        f"# otterbench report: {len(runs)} runs of suite(s) {sorted({run['suite'] for run in runs})}",
        "",
        PAPER_CLAIM,
        "",
        varying,
        "",
        *_table(header, rows),
        "",
        "Each run's own report (arms, non-disruption, environment, caveats) is linked from its run id.",
        "",
        *[f"![{name}]({name})" for name in figures],
        "",
    ]
    return "\n".join(lines)
