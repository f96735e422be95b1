"""`otterbench plan`: predict paper-scale space and time per arm from configs alone (no GPU, no weights)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from otterbench.exits import Exit
from otterbench.paths import writable_problem
from otterbench.plan.costs import (
    H100_RIDGE_FLOPS_PER_BYTE,
    PlanError,
    PlanInputs,
    PlanResult,
    plan_costs,
    sweep_ratios,
)

_GIB = 2**30


def plan(
    base: Annotated[
        str,
        typer.Option(help="Base LLM: shipped name (llama-2-7b), config.json, its folder, or cached hub id."),
    ],
    reward_model: Annotated[
        str | None, typer.Option(help="ARGS reward model config (default: the base's shape).")
    ] = None,
    expert: Annotated[
        str | None, typer.Option(help="DExperts expert config (default: the base's shape).")
    ] = None,
    anti_expert: Annotated[
        str | None, typer.Option(help="DExperts anti-expert config (default: the base's shape).")
    ] = None,
    task: Annotated[str, typer.Option(help="args or dexperts.")] = "args",
    otter_ratio: Annotated[
        float, typer.Option(help="Insertion ratio r: dx=d*r, mx=m*r, gx=max(1,g*r).")
    ] = 0.125,
    extra_hidden: Annotated[int | None, typer.Option(help="Override dx.")] = None,
    extra_kv_heads: Annotated[int | None, typer.Option(help="Override gx.")] = None,
    extra_ffn: Annotated[int | None, typer.Option(help="Override mx.")] = None,
    signal: Annotated[str, typer.Option(help="Otter signal head: vocab or scalar.")] = "vocab",
    k: Annotated[int, typer.Option(help="ARGS candidates per step.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Sequences decoded together.")] = 1,
    context: Annotated[int, typer.Option(help="Tokens in context (KV size, attention FLOPs).")] = 1024,
    prompt_length: Annotated[
        int | None, typer.Option(help="Prompt tokens of the prefill prediction (default: the context).")
    ] = None,
    layout: Annotated[
        str,
        typer.Option(
            help="How the Otter arm runs: split (beside the base), fused (widened checkpoint, zero blocks) "
            "or packed (engine-ready, zero-free)."
        ),
    ] = "split",
    dtype: Annotated[str, typer.Option(help="float32, bfloat16 or float16.")] = "bfloat16",
    ridge: Annotated[
        float, typer.Option(help="Device FLOPs per byte where compute-bound starts (H100 SXM bf16 default).")
    ] = H100_RIDGE_FLOPS_PER_BYTE,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of tables.")
    ] = False,
    plot: Annotated[
        Path | None, typer.Option(help="Write savings against ratio (1/32..1/2) to this PNG.")
    ] = None,
) -> None:
    """Predict each arm's parameters, weights, KV cache and FLOPs, and Otter's extra space/time savings."""
    problem = writable_problem(plot, "--plot", is_file=True) if plot is not None else None
    if problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(Exit.BAD_INPUT)
    try:
        inputs = PlanInputs(
            base=base,
            task=task,
            reward_model=reward_model,
            expert=expert,
            anti_expert=anti_expert,
            ratio=otter_ratio,
            extra_hidden=extra_hidden,
            extra_kv_heads=extra_kv_heads,
            extra_ffn=extra_ffn,
            signal=signal,
            k=k,
            batch_size=batch_size,
            context=context,
            prompt_length=prompt_length,
            layout=layout,
            dtype=dtype,
            ridge_flops_per_byte=ridge,
        )
        result = plan_costs(inputs)
        if plot is not None:
            from otterbench.plan.plot import DEFAULT_RATIOS, plot_savings

            plot_savings(sweep_ratios(inputs, list(DEFAULT_RATIOS)), plot, inputs.ratio)
    except (PlanError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(Exit.BAD_INPUT) from None
    except OSError as error:  # read-only or full disk found while writing the plot
        typer.echo(f"error: cannot write --plot {plot} ({error.strerror}): pass a writable path", err=True)
        raise typer.Exit(Exit.BAD_INPUT) from None
    if json_out:
        typer.echo(json.dumps(result.to_dict()))
        return
    console = Console()
    if not console.is_terminal:
        console = Console(width=130)  # pipes and logs: keep each arm on one line
    print_plan(result, console)
    if plot is not None:
        console.print(f"plot: {plot}")


_ARM_COLUMNS = (
    ("arm", lambda a: a.name),
    ("params (B)", lambda a: f"{a.parameters / 1e9:.3f}"),
    ("weights (GiB)", lambda a: f"{a.weights_bytes / _GIB:.2f}"),
    ("KV/token (KiB)", lambda a: f"{a.kv_bytes_per_token / 1024:.0f}"),
    ("space (GiB)", lambda a: f"{a.space_bytes / _GIB:.2f}"),
    ("decode GFLOP/tok", lambda a: f"{a.flops_per_token / 1e9:.1f}"),
    ("prefill GFLOP/tok", lambda a: f"{a.prefill_flops_per_token / 1e9:.1f}"),
    ("moved/step (GiB)", lambda a: f"{a.bytes_per_step / _GIB:.2f}"),
    ("prefill (GiB)", lambda a: f"{a.prefill_roofline_bytes / _GIB:.2f}"),
    ("FLOP/byte", lambda a: f"{a.arithmetic_intensity:.1f}"),
    ("bound", lambda a: a.bound),
)
_SAVING_COLUMNS = (
    ("separate arm", "separate_arm"),
    ("otter arm", "otter_arm"),
    ("space", "space_pct"),
    ("time (FLOPs)", "time_flops_pct"),
    ("time (bytes)", "time_bytes_pct"),
    ("decode limit", "time_roofline_pct"),
    ("prefill limit", "prefill_pct"),
)


def print_plan(result: PlanResult, console: Console) -> None:
    """Render a plan as two rich tables (arms, savings) and its notes."""
    inputs, spec = result.inputs, result.spec
    arms = Table(
        box=box.SIMPLE_HEAD,
        title=f"{inputs.base}: {inputs.task}, k={inputs.k}, context={inputs.context}, prompt={inputs.prompt}, "
        f"batch={inputs.batch_size}, {inputs.dtype}, {inputs.layout} layout; Otter dx={spec.extra_hidden_size} "
        f"gx={spec.extra_kv_heads} mx={spec.extra_intermediate_size} ({spec.signal} signal)",
    )
    for header, _ in _ARM_COLUMNS:
        arms.add_column(
            header, justify="left" if header in ("arm", "bound") else "right", no_wrap=header == "arm"
        )
    for arm in result.arms:
        arms.add_row(*(cell(arm) for _, cell in _ARM_COLUMNS))
    console.print(arms)
    savings = Table(
        box=box.SIMPLE_HEAD,
        title="Predicted extra cost saved by Otter (%), extra = arm - base; limits: every arm at equal efficiency",
    )
    for header, key in _SAVING_COLUMNS:
        savings.add_column(header, justify="right" if key.endswith("_pct") else "left")
    for saving in result.savings:
        savings.add_row(*(_cell(getattr(saving, key)) for _, key in _SAVING_COLUMNS))
    console.print(savings)
    stored = ", ".join(f"{name} {count / 1e6:.1f}M" for name, count in result.stored_extra_parameters.items())
    console.print(
        f"Otter inserts {result.inserted_parameters / 1e6:.1f}M parameters; stored beyond the base by layout "
        f"(zero blocks included where stored): {stored}. Prefill (GiB): one batch's prefill as bytes at full "
        "bandwidth (roofline)."
    )
    for note in result.notes:
        console.print(f"note: {note}")


def _cell(value: str | float | None) -> str:
    if value is None:
        return "n/a"
    return value if isinstance(value, str) else f"{value:.1f}"
