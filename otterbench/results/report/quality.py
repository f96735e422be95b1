"""Cost and quality side by side: the guided ARGS arms' quality (quality.json, written by `otterbench
distill`) next to their measured cost in a run (results.json). Both are files; the section is rebuilt from
them. A run finds its quality file next to the insertion it ran (`--otter DIR` -> DIR/quality.json) unless
`otterbench report --quality FILE` names one.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.table import Table

from otterbench.results.reference import reference_arm

QUALITY_FILE = "quality.json"


def find_quality(results: dict, explicit: str | Path | None = None) -> dict | None:
    """The quality data for a run: `explicit`, else the run's insertion folder's quality.json, else None."""
    otter_path = (results.get("config") or {}).get("otter_path")
    path = Path(explicit) if explicit else (Path(otter_path) / QUALITY_FILE if otter_path else None)
    if path is None or not path.is_file():
        if explicit:
            raise ValueError(f"--quality={explicit} is not a file: pass a quality.json written by distill")
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def quality_rows(quality: dict, results: dict | None = None) -> list[list[str]]:
    """One row per arm: agreement (free-running, teacher-forced), mean reward, and the run's cost if any."""
    arms = {arm["name"]: arm for arm in (results or {}).get("arms", [])}
    base_total = ((reference_arm(arms) or {}).get("latency") or {}).get("total_s", {}).get("median")
    rows = []
    for row in quality["arms"]:
        latency = (arms.get(row["arm"]) or {}).get("latency")
        total = latency["total_s"]["median"] if latency else None
        extra = f"+{(total - base_total) * 1e3:.1f} ms" if total is not None and base_total else "-"
        tpot = f"{latency['tpot_s']['median'] * 1e3:.2f} ms" if latency else "-"
        rows.append(
            [
                row["arm"],
                _pct(row["agreement_with_args"]),
                _pct(row.get("teacher_forced_agreement")),
                f"{row['mean_reward']:+.4f}",
                tpot,
                extra,
            ]
        )
    return rows


HEADER = [
    "arm",
    "agreement with ARGS (free-running)",
    "agreement (teacher-forced)",
    "mean reward",
    "TPOT p50",
    "extra time over base",
]


def quality_section(quality: dict | None, results: dict) -> list[str]:
    """report.md's cost-and-quality section (empty when the run has no quality data)."""
    if quality is None:
        return []
    rows = quality_rows(quality, results)
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [
        "## Quality beside cost (distilled weights)",
        "",
        f"On {quality['held_out_prompts']} held-out prompts x {quality['max_new_tokens']} tokens (k="
        f"{quality['k']}, w={quality['weight']}), each arm decoding on its own: agreement = share of its "
        "tokens equal to ARGS's (`args-faithful`, the separate reward model) at the same position; "
        "teacher-forced = the same on ARGS's own prefixes; mean reward = the reward model's score of "
        "prompt + output. Cost columns come from this run (`-` where the arm did not run here).",
        "",
        *lines,
        "",
    ]


def quality_table(quality: dict, results: dict | None = None) -> Table:
    """The same rows as a rich table, for the terminal."""
    table = Table(title=f"quality on {quality['held_out_prompts']} held-out prompts (distilled weights)")
    for index, name in enumerate(HEADER):
        table.add_column(name, justify="left" if index == 0 else "right")
    for row in quality_rows(quality, results):
        table.add_row(*row)
    return table
