"""`otterbench run` and `otterbench suites`: thin wrappers over `otterbench.run.pipeline.run_suite`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from otterbench.commands.common import fail

RUN_HELP = (
    "Run every arm of a suite on one matched workload and measure memory and latency.\n\n"
    "Each arm (base LLM alone, LLM + separate model(s), Otter-inserted LLM) runs in its own freshly spawned "
    "process on the same prompts, seed and settings; results go to OUT/<suite>/<UTC time>-<id>/ as "
    "results.json (schema: otterbench/results/schema/results.schema.json) and arms.csv, rewritten after every arm.\n\n"
    "Exit codes: 0 every arm ok; 1 an arm failed (the others are kept); 2 bad input; 130 interrupted "
    '(finished arms are kept, status "interrupted").'
)


def _options_to_overrides(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


class BarReporter:
    """Draws one progress bar per arm (warm-up + measured runs) and collects warnings."""

    def __init__(self, progress: Progress, console: Console) -> None:
        self.progress, self.console, self.tasks = progress, console, {}

    def arm_started(self, arm: str, total_steps: int) -> None:
        self.tasks[arm] = self.progress.add_task(f"{arm:<18} loading", total=total_steps)

    def arm_progress(self, arm: str, done: int, total: int) -> None:
        self.progress.update(self.tasks[arm], completed=done, total=total, description=f"{arm:<18} running")

    def arm_finished(self, arm: str, record: dict[str, Any]) -> None:
        status = record.get("status")
        label = "[green]ok[/]" if status == "ok" else f"[red]{status}[/]"
        self.progress.update(self.tasks[arm], description=f"{arm:<18} {label}")
        if status != "ok":
            self.console.print(f"[red]{arm} failed:[/] {record.get('error')}")

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/] {message}")


def run(
    suite: str = typer.Option(
        "safety", help="suite name (see `otterbench suites`) or a path to a suite TOML"
    ),
    profile: str = typer.Option(
        None, help="model profile of the suite: tiny (embedded, offline), paper, ..."
    ),
    base: str = typer.Option(
        None, help="base LLM: hub id (cached locally) or local path; overrides the profile"
    ),
    reward_model: str = typer.Option(None, help="ARGS reward model: hub id or local path"),
    token_reward_model: str = typer.Option(
        None, help="args-token's token-level reward model (a causal LM): hub id or local path"
    ),
    expert: str = typer.Option(None, help="DExperts expert: hub id or local path"),
    anti_expert: str = typer.Option(None, help="DExperts anti-expert: hub id or local path"),
    otter: Path = typer.Option(
        None, help="saved insertion (from `otterbench distill`); default: undistilled"
    ),
    otter_ratio: float = typer.Option(0.125, help="insertion size when no --otter is given (dx=d*r, ...)"),
    layout: str = typer.Option("split", help="Otter layout: split (wrappers) or fused (widened checkpoint)"),
    arms: str = typer.Option(None, help="comma-separated arms to run instead of the suite's"),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N"),
    dtype: str = typer.Option(None, help="float32, bfloat16 or float16 (default: the profile's)"),
    batch_size: int = typer.Option(None, help="prompts decoded together"),
    max_new_tokens: int = typer.Option(None, help="N: exactly this many new tokens per prompt, every arm"),
    k: int = typer.Option(None, help="ARGS top-k candidates scored per step"),
    weight: float = typer.Option(None, help="ARGS w in logit + w*reward"),
    alpha: float = typer.Option(None, help="DExperts alpha in logits + alpha*(expert - anti)"),
    filter_p: float = typer.Option(
        None, help="DExperts top-p nucleus kept of the base logits before the experts' shift (1: no filter)"
    ),
    num_prompts: int = typer.Option(None, help="use this many prompts of the suite's file"),
    repeats: int = typer.Option(None, help="measured runs per arm (>= 1)"),
    warmup: int = typer.Option(None, help="unmeasured runs per arm first (>= 0)"),
    prompts: Path = typer.Option(None, help='your own prompts: JSONL, one {"prompt": "..."} per line'),
    out: Path = typer.Option(None, help="results root (default: ./results or $OTTERBENCH_RESULTS_DIR)"),
    isolation: str = typer.Option(
        "process", help="process (one fresh process per arm) or inline (debugging)"
    ),
    device_map: str = typer.Option(
        None, help='e.g. "auto": let accelerate place a model too big for one GPU'
    ),
    cpu_threads: int = typer.Option(
        1, help="torch threads per arm process on CPU (1: steady timings on shared cores; 0: torch's default)"
    ),
    schedule: str = typer.Option(
        "auto",
        help="interleaved (arms in live processes, measured round-robin: drift hits all alike), sequential "
        "(one arm after another), or auto (interleaved on CPU, sequential on GPU)",
    ),
    save_outputs: bool = typer.Option(
        False, "--save-outputs", help="write outputs.jsonl: every arm's generated ids and text, per prompt"
    ),
    json_output: bool = typer.Option(False, "--json", help="print results.json to stdout and nothing else"),
) -> None:
    from otterbench.run.config import resolve_run_config
    from otterbench.run.pipeline import default_results_dir, run_suite

    console = Console(stderr=True)
    try:
        config = resolve_run_config(
            suite,
            out_dir=out or default_results_dir(),
            profile=profile,
            suite_overrides=_options_to_overrides(
                batch_size=batch_size,
                max_new_tokens=max_new_tokens,
                k=k,
                weight=weight,
                alpha=alpha,
                filter_p=filter_p,
                num_prompts=num_prompts,
                repeats=repeats,
                warmup=warmup,
                dtype=dtype,
            ),
            arms=[a.strip() for a in arms.split(",") if a.strip()] if arms else None,
            prompts=prompts,
            device=device,
            overrides=_options_to_overrides(
                base=base,
                reward_model=reward_model,
                token_reward_model=token_reward_model,
                expert=expert,
                anti_expert=anti_expert,
            ),
            otter_path=str(otter) if otter else None,
            otter_ratio=otter_ratio,
            layout=layout,
            isolation=isolation,
            device_map=device_map,
            cpu_threads=cpu_threads,
            schedule=schedule,
            save_outputs=save_outputs,
        )
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=json_output,
        ) as progress:
            outcome = run_suite(
                config,
                BarReporter(progress, console),
                on_prelude=None if json_output else lambda p: _print_prelude(console, config, p),
            )
    except ValueError as error:  # every input error of the library is a ValueError with one line
        raise fail(str(error)) from None
    if json_output:
        typer.echo(json.dumps(outcome.results))
    else:
        from otterbench.results.summary import print_summary

        out_console = Console()
        if not out_console.is_terminal:
            out_console = Console(width=160)  # logs and pipes: keep each table row on one line
        print_summary(out_console, outcome.results, outcome.run_dir)
    raise typer.Exit(int(outcome.exit_code))


def _print_prelude(console: Console, config: Any, prelude: dict[str, Any]) -> None:
    models = ", ".join(f"{role}={config.source(role)}" for role in prelude["workload"]["model_fingerprints"])
    otter = (
        f"Otter: saved insertion {config.otter_path}"
        if config.otter_path
        else (
            f"Otter: undistilled insertion (ratio {config.otter_ratio}; distill one with `otterbench distill`)"
        )
    )
    console.print(
        f"[bold]{config.suite.name}[/] on {prelude['environment']['device']} | profile "
        f"{config.profile} ({models}) | {config.dtype} | {prelude['workload']['num_prompts']} prompts x "
        f"{config.suite.max_new_tokens} tokens | {otter}, {config.layout} layout"
    )
    if config.source("base") == "tiny":
        console.print(
            "[dim]tiny profile: random weights, text is not meaningful; it measures cost and checks "
            "that arms agree.[/]"
        )
    console.print(f"[dim]writing {prelude['run_dir']}[/]")


def suites() -> None:
    """List the suites and what each measures."""
    from otterbench.run.suite import list_suites

    table = Table(title="suites")
    table.add_column("name")
    table.add_column("description")
    for name, description in list_suites():
        table.add_row(name, description)
    Console().print(table)
