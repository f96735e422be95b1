"""The terminal tables of a distillation: before/after on the held-out prompts, from its report alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table


def signal_table(report: Any, out: Path) -> Table:
    """Otter (and the token-level reward model) before/after: agreement, Spearman, held-out loss."""
    table = Table(title=f"distilled {report.task}: held-out prompts, teacher-forced on the teacher's tokens")
    table.add_column("metric")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    rows = [
        ("agreement with the teacher's token", "agreement", "{:.1%}"),
        ("Spearman rho (signal vs teacher, top-k)", "spearman", "{:+.3f}"),
        ("held-out loss (centred MSE)", "loss", "{:.3g}"),
    ]
    students = [("Otter", report)] + ([("token RM", report.token)] if report.token else [])
    for student, result in students:
        for label, name, fmt in rows:
            table.add_row(
                f"{student}: {label}",
                fmt.format(getattr(result.before, name)),
                fmt.format(getattr(result.after, name)),
            )
    table.caption = (
        f"{report.train_prompts} train / {report.held_out_prompts} held-out prompts, "
        f"{report.before.steps_evaluated} held-out steps, {report.steps} Adam steps; "
        f"teacher {report.collect_s:.1f} s, training {report.train_s:.1f} s; saved to {out}"
    )
    return table


def drafts_table(report: Any, out: Path) -> Table:
    """Both drafts before/after: acceptance and loss on the held-out prompts."""
    table = Table(title="distilled accel: held-out prompts, teacher-forced on the base's greedy tokens")
    for column in ("draft", "acceptance before", "acceptance after", "loss before", "loss after"):
        table.add_column(column, justify="left" if column == "draft" else "right")
    for label, before, after in (
        ("otter-spec (signal -> token t+2)", report.otter_before, report.otter_after),
        ("spec-separate (draft model -> t+1)", report.draft_before, report.draft_after),
    ):
        table.add_row(
            label,
            f"{before.acceptance:.1%}",
            f"{after.acceptance:.1%}",
            f"{before.loss:.3g}",
            f"{after.loss:.3g}",
        )
    table.caption = (
        f"{report.train_prompts} train (suite + corpus) / {report.held_out_prompts} held-out suite prompts, "
        f"{report.otter_before.targets} held-out targets (tokens 2..N, N={report.max_new_tokens}), "
        f"{report.steps} Adam steps each; teacher {report.collect_s:.1f} s, training {report.train_s:.1f} s; "
        f"saved to {out}"
    )
    return table
