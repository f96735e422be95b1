"""`otterbench distill --suite accel`: both drafts trained on the base's continuations, before/after side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


def _summary(report: Any, out: Path) -> Table:
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


def run_accel_distill(
    console: Console, models: Any, prompts: list[str], spec: Any, out: Path, settings: dict[str, Any]
) -> None:
    """Distill both drafts with a progress bar, save them and print the before/after table."""
    from otterbench.tools.distill_accel import (
        CORPUS_PROMPT_TOKENS,
        DRAFT_DIR,
        HELD_OUT_FILE,
        corpus_prompts,
        distill_accel,
        save_accel_distilled,
    )

    def encode(texts: list[str]) -> list[list[int]]:
        return [models.tokenizer(text, add_special_tokens=True)["input_ids"] for text in texts]

    prompt_ids = encode(prompts)
    extra = [ids[:CORPUS_PROMPT_TOKENS] for ids in encode(corpus_prompts(prompts))]
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        bars = {
            name: progress.add_task(f"{name}: waiting", total=settings["steps"])
            for name in ("otter", "draft")
        }

        def on_step(name: str, step: int, loss: float) -> None:
            progress.update(bars[name], completed=step, description=f"{name}: loss {loss:.3g}")

        report = distill_accel(models, prompt_ids, spec, extra_train_ids=extra, on_step=on_step, **settings)
    save_accel_distilled(report, out, prompts)
    console.print(_summary(report, out))
    console.print(
        f"use both: otterbench run --suite accel --otter {out} --draft {out / DRAFT_DIR} "
        f"[--prompts {out / HELD_OUT_FILE}]"
    )
