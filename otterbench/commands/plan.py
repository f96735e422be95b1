"""`otterbench plan`: predict paper-scale space and time per arm from configs alone (no GPU, no weights).

Thin: parse, build PlanInputs, call `otterbench.plan.predict.predict`, print (otterbench/plan/tables.py).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from otterbench.backends.vllm.args_engines import CUDA_BLOCK_TOKENS
from otterbench.commands.common import stdout_console, stdout_may_close
from otterbench.exits import Exit
from otterbench.models.roles import BASE_ROLE, ROLES
from otterbench.otter.spec import DEFAULT_RATIO
from otterbench.plan.inputs import H100_RIDGE_FLOPS_PER_BYTE, PlanInputs, planned_tasks
from otterbench.plan.predict import predict
from otterbench.plan.shapes import PlanError
from otterbench.plan.tables import print_plan


def with_model_roles(command: Callable[..., None]) -> Callable[..., None]:
    """`command` with one `--ROLE` option per separate model role (otterbench/models/roles.py), handed to it
    as `models` (role -> config source or None): a registered role is an option without an edit here."""
    roles = [role for role in ROLES.values() if role.name != BASE_ROLE]
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "models"]
    options = [
        inspect.Parameter(
            role.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(None, help=f"{role.help} (its config only; default: the base's shape)."),
            annotation=Optional[str],  # noqa: UP045 — Typer reads the annotation at runtime
        )
        for role in roles
    ]
    parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + options

    def wrapper(**values: Any) -> None:
        command(models={role.name: values.pop(role.name) for role in roles}, **values)

    wrapper.__name__, wrapper.__doc__ = command.__name__, command.__doc__
    wrapper.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper


@with_model_roles
def plan(
    base: Annotated[
        str,
        typer.Option(help="Base LLM: shipped name (llama-2-7b), config.json, its folder, or cached hub id."),
    ],
    task: Annotated[str, typer.Option(help=f"The task priced: {' or '.join(planned_tasks())}.")] = "args",
    otter_ratio: Annotated[
        float,
        typer.Option(
            help="Insertion ratio r: dx=d*r, mx=m*r, gx=max(1,g*r), dx rounded to a width the heads divide."
        ),
    ] = DEFAULT_RATIO,
    extra_hidden: Annotated[int | None, typer.Option(help="Override dx.")] = None,
    extra_kv_heads: Annotated[int | None, typer.Option(help="Override gx.")] = None,
    extra_ffn: Annotated[int | None, typer.Option(help="Override mx.")] = None,
    signal: Annotated[str, typer.Option(help="Otter signal head: vocab or scalar.")] = "vocab",
    k: Annotated[int, typer.Option(help="ARGS candidates per step.")] = PlanInputs.k,
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
        float,
        typer.Option(
            help="Device FLOPs per byte where compute-bound starts.",
            show_default=f"{H100_RIDGE_FLOPS_PER_BYTE:.0f}: H100 SXM, 989 dense bf16 TFLOP/s over 3.35 TB/s",
        ),
    ] = H100_RIDGE_FLOPS_PER_BYTE,
    vllm_block_size: Annotated[
        int,
        typer.Option(
            help="Tokens per KV block of vLLM's prefix cache, for args-vllm (it re-sends each sequence every "
            "token and recomputes what whole blocks leave; CUDA default)."
        ),
    ] = CUDA_BLOCK_TOKENS,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of tables.")
    ] = False,
    plot: Annotated[
        Path | None, typer.Option(help="Write savings against ratio (1/32..1/2) to this PNG.")
    ] = None,
    models: dict[str, str | None] | None = None,
) -> None:
    """Predict each arm's parameters, weights, KV cache and FLOPs, and Otter's extra space/time savings."""
    try:
        inputs = PlanInputs(
            base=base,
            task=task,
            models={role: source for role, source in (models or {}).items() if source is not None},
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
            vllm_block_size=vllm_block_size,
        )
        result = predict(inputs, plot)
    except (PlanError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(Exit.BAD_INPUT) from None
    if json_out:
        with stdout_may_close():
            typer.echo(json.dumps(result.to_dict()))
        return
    console = stdout_console(pipe_width=130)  # pipes and logs: keep each arm on one line
    print_plan(result, console)
    if plot is not None:
        console.print(f"plot: {plot}")
