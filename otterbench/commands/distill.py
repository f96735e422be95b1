"""`otterbench distill`: a thin wrapper over `otterbench.tools.distill.distill_otter` for one suite's prompts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from otterbench.commands.common import fail


def _summary(report: Any, out: Path) -> Table:
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


def _load(suite_name: str, profile: str | None, device: str) -> tuple[Any, Any, list[str], Any]:
    from otterbench.arms.registry import model_roles
    from otterbench.env import resolve_device
    from otterbench.models.loading import load_model_set
    from otterbench.run.suite import load_prompts, load_suite

    suite = load_suite(suite_name)
    profile = profile or suite.default_profile
    torch_device = resolve_device(device)
    needs = model_roles(suite.arms) - {"otter"}
    if suite.task == "args" and "token_reward_model" in suite.profiles[profile]:
        needs |= {"token_reward_model"}  # trained beside Otter on the same teacher
    models = load_model_set(profile, needs=needs, profiles=suite.profiles, device=torch_device)
    return suite, models, load_prompts(suite.prompts_path), torch_device


def distill(
    suite: str = typer.Option(
        "safety", help="suite name (safety: ARGS, detox: DExperts) or a suite TOML path"
    ),
    profile: str = typer.Option(None, help="model profile of the suite (default: the suite's, e.g. tiny)"),
    out: Path = typer.Option(None, help="output directory (default: ./distilled/<suite>-<profile>)"),
    steps: int = typer.Option(150, help="Adam steps on the inserted parameters"),
    lr: float = typer.Option(1e-3, help="Adam learning rate"),
    ratio: float = typer.Option(0.125, help="insertion size: dx=d*r, mx=m*r, gx=max(1, g*r)"),
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

    from otterbench.otter import OtterSpec
    from otterbench.run.config import resolve_run_config
    from otterbench.run.preflight import preflight
    from otterbench.tools.distill import distill_otter, save_distilled

    console = Console()
    try:
        numbers = {"--lr": lr, "--ratio": ratio, "--held-out": held_out}
        preflight(
            resolve_run_config(suite, out_dir=out or Path("distilled"), profile=profile, device=device),
            numbers,
        )
        suite_cfg, models, prompts, torch_device = _load(suite, profile, device)
        spec = OtterSpec.from_ratio(models.base.config, ratio=ratio, signal="vocab", init=init)
        out = out or Path("distilled") / f"{suite_cfg.name}-{models.profile}"
        new_tokens = max_new_tokens or suite_cfg.max_new_tokens
        if suite_cfg.task == "accel":
            from otterbench.commands.distill_accel import run_accel_distill

            settings = {"steps": steps, "lr": lr, "seed": seed, "held_out_fraction": held_out}
            settings |= {"max_new_tokens": new_tokens, "batch_size": batch_size, "device": torch_device}
            run_accel_distill(console, models, prompts, spec, out, settings)
            return
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as progress:
            task_id = progress.add_task(f"{suite_cfg.task}: collecting teacher", total=steps)

            def on_step(step: int, loss: float) -> None:
                progress.update(task_id, completed=step, description=f"{suite_cfg.task}: loss {loss:.3g}")

            report = distill_otter(
                models, prompts, suite_cfg.task, spec, steps=steps, lr=lr, seed=seed,
                held_out_fraction=held_out, max_new_tokens=new_tokens, k=suite_cfg.k,
                weight=suite_cfg.weight, alpha=suite_cfg.alpha, batch_size=batch_size,
                filter_p=suite_cfg.filter_p, device=torch_device, on_step=on_step, token_student=token_rm,
            )  # fmt: skip
    except ValueError as error:
        raise fail(str(error)) from None
    save_distilled(report, out, tokenizer=models.tokenizer)
    console.print(_summary(report, out))
    if report.quality:
        from otterbench.results.report.quality import quality_table

        console.print(quality_table(report.quality))
