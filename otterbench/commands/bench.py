"""`otterbench bench-insert`: decode-step cost of the split, fused and packed layouts against the base model.

Thin: parse, call `otterbench.bench.insert.run_bench_insert`, print its report as JSON or a table.
"""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from otterbench.exits import Exit
from otterbench.otter.spec import DEFAULT_RATIO


def bench_insert(
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N"),
    dtype: str = typer.Option("float32", help="float32, bfloat16 or float16 (GPU)"),
    preset: str = typer.Option(
        "tiny", help="model shape: tiny (CPU-friendly) or 1b (a Llama-1B-like shape, GPU)"
    ),
    batch_size: int = typer.Option(1, min=1, help="sequences decoded together"),
    context: int = typer.Option(128, min=1, help="tokens already in the KV cache"),
    ratio: float = typer.Option(DEFAULT_RATIO, help="insertion ratio (dx=d*r, mx=m*r, gx=max(1, g*r))"),
    repeats: int = typer.Option(30, min=1, help="timed rounds (each layout once per round, interleaved)"),
    warmup: int = typer.Option(5, min=0, help="untimed rounds first"),
    json_output: bool = typer.Option(False, "--json", help="print one JSON object only"),
) -> None:
    """Time one cached decode step of base and the three layouts side by side; print extra time vs extra FLOPs."""
    from rich.progress import Progress

    from otterbench.bench.insert import run_bench_insert

    console = Console(stderr=json_output)
    with Progress(console=console, transient=True, disable=json_output) as bar:
        task = bar.add_task(f"decode steps ({preset} shape)", total=warmup + repeats)
        try:
            report = run_bench_insert(
                preset, device, dtype, batch_size=batch_size, context=context, ratio=ratio, repeats=repeats,
                warmup=warmup, progress=lambda done, total: bar.update(task, completed=done),
            )  # fmt: skip
        except ValueError as error:
            console.print(f"[red]error:[/] {error}")
            raise typer.Exit(Exit.BAD_INPUT) from None
    timings, torch_device = report.layouts, report.device
    if json_output:
        typer.echo(json.dumps(report.to_dict()))
        return
    table = Table(
        title=f"decode step, {preset} shape, batch {batch_size}, context {context}, {dtype}, {torch_device}"
    )
    for column in ("layout", "median step", "extra time", "extra FLOPs (analytic)", "time/FLOPs ratio", "n"):
        table.add_column(column, justify="right")
    for t in timings:

        def pct(value: float | None) -> str:
            return "-" if value is None else f"{100 * value:+.1f}%"

        table.add_row(
            t.layout,
            f"{t.median_s * 1e3:.3f} ms",
            pct(t.extra_time_share),
            pct(t.extra_flops_share),
            "-" if t.ratio is None else f"{t.ratio:.2f}",
            str(len(t.step_s)),
        )
    console.print(table)
    console.print("ratio = extra time share / extra FLOPs share; goal on GPU: <= 1.25 for the better layout.")
