"""`otterbench distill`: parse, build a DistillConfig, call `otterbench.distillation.suite.distill_suite`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from otterbench.commands.common import drop_display, fail
from otterbench.otter.spec import DEFAULT_RATIO


def distill(
    suite: str = typer.Option(
        "safety", help="suite name (safety: ARGS, detox: DExperts, accel: drafts) or a suite TOML path"
    ),
    profile: str = typer.Option(None, help="model profile of the suite (default: the suite's, e.g. tiny)"),
    out: Path = typer.Option(None, help="output directory (default: ./distilled/<suite>-<profile>)"),
    steps: int = typer.Option(150, help="Adam steps on the inserted parameters"),
    lr: float = typer.Option(1e-3, help="Adam learning rate"),
    ratio: float = typer.Option(DEFAULT_RATIO, help="insertion size: dx=d*r, mx=m*r, gx=max(1, g*r)"),
    init: str = typer.Option("copy", help="initialisation of the inserted parameters: copy, normal or zeros"),
    held_out: float = typer.Option(
        0.25, help="fraction of the prompts held out for the before/after figures"
    ),
    batch_size: int = typer.Option(8, help="sequences per training step"),
    seed: int = typer.Option(0, help="seed of the held-out split and the minibatch order"),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N"),
    max_new_tokens: int = typer.Option(
        None, help="tokens generated per prompt for the teacher data (default: the suite's N)"
    ),
    token_rm: bool = typer.Option(
        True,
        help="ARGS: also train the suite's token-level reward model (args-token) on the same teacher, steps "
        "and data, and measure every guided arm's quality on the held-out prompts (quality.json)",
    ),
) -> None:
    """Distill a suite's separate model into Otter's inserted parameters (base frozen) and save them.

    safety (ARGS) learns the reward of each top-k candidate; detox (DExperts) learns expert - anti logits
    over the base's top-p nucleus. For ARGS the token-level reward model is trained the same way and saved
    in OUT/token_reward_model (use it with `run --token-reward-model OUT/token_reward_model`).
    accel trains Otter's draft (signal -> token t+2) and the separate draft model (same data and steps) on the
    base's own greedy continuations, saving the draft model in OUT/draft (use it with `run --draft OUT/draft`).

    Held-out prompts give agreement and Spearman before/after. Use the result: `otterbench run --otter OUT`.

    Exit codes: 0 ok, 2 bad input.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from otterbench.distillation.accel import DRAFT_DIR, HELD_OUT_FILE
    from otterbench.distillation.suite import DistillConfig, distill_suite
    from otterbench.distillation.tables import drafts_table, signal_table

    config = DistillConfig(
        suite=suite, profile=profile, out=out, steps=steps, lr=lr, ratio=ratio, init=init, held_out=held_out,
        batch_size=batch_size, seed=seed, device=device, max_new_tokens=max_new_tokens, token_rm=token_rm,
    )  # fmt: skip
    console = Console()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console) as progress:
            bars: dict[str, int] = {}

            def on_step(student: str, step: int, loss: float) -> None:
                if student not in bars:
                    bars[student] = progress.add_task(student, total=steps)
                progress.update(bars[student], completed=step, description=f"{student}: loss {loss:.3g}")

            try:
                outcome = distill_suite(config, on_step)
            except ValueError:
                if not bars:  # refused before training: the error line alone
                    drop_display(progress)
                raise
    except ValueError as error:
        raise fail(str(error)) from None
    if outcome.kind == "drafts":
        console.print(drafts_table(outcome.report, outcome.out))
        console.print(
            f"use both: otterbench run --suite accel --otter {outcome.out} --draft {outcome.out / DRAFT_DIR} "
            f"[--prompts {outcome.out / HELD_OUT_FILE}]"
        )
        return
    console.print(signal_table(outcome.report, outcome.out))
    if outcome.report.quality:
        from otterbench.results.report.quality import quality_table

        console.print(quality_table(outcome.report.quality))
