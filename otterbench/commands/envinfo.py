"""`otterbench env`: what the trackers can measure on this machine, and the software they run on."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from otterbench.commands.common import stdout_console, stdout_may_close
from otterbench.exits import Exit


def _yes_no(ok: bool, reason: str) -> str:
    return "yes" if ok else f"no: {reason}" if reason else "no"


def _capability_table(caps: dict[str, Any], others: list[dict[str, Any]] | None) -> Table:
    table = Table(title="What can be measured here", show_header=False)
    table.add_column("figure", style="bold")
    table.add_column("status")
    table.add_row("device", caps["device"])
    table.add_row(
        "CUDA", "available" if caps["cuda_available"] else "unavailable (torch sees no CUDA device)"
    )
    table.add_row("GPU", caps["gpu_name"] or "none (CUDA unavailable or not selected)")
    table.add_row("NVML", _yes_no(caps["nvml_available"], caps["nvml_reason"]))
    table.add_row(
        "per-process GPU memory (NVML)",
        _yes_no(caps["nvml_process_memory"], caps["nvml_process_memory_reason"]),
    )
    table.add_row(
        "energy counter (GPU: NVML; CPU: RAPL)", _yes_no(caps["energy_counter"], caps["energy_reason"])
    )
    table.add_row(
        "torch CUDA memory stats", "yes" if caps["torch_memory_stats"] else "no: device is not CUDA"
    )
    table.add_row("CPU peak RSS method", caps["rss_method"])
    table.add_row("per-phase RSS reset", _yes_no(caps["rss_phase_reset"], caps["rss_phase_reset_reason"]))
    if caps["device"].startswith("cuda"):
        users = "unknown" if others is None else ", ".join(str(p["pid"]) for p in others) or "none"
        table.add_row("other processes on the GPU", users)
    return table


def _environment_table(environment: dict[str, Any]) -> Table:
    table = Table(title="Environment", show_header=False)
    table.add_column("item", style="bold")
    table.add_column("value")
    for key, value in environment.items():
        if key == "git_dirty" and value is not None:
            value = "dirty" if value else "clean"
        table.add_row(key, "-" if value is None else str(value))
    return table


def env(
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N"),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
) -> None:
    """Show what the trackers can measure on this machine (GPU, NVML, energy, RSS) and the environment."""
    from otterbench.env import environment_report, resolve_device

    try:
        resolved = resolve_device(device)
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(Exit.BAD_INPUT) from None
    report = environment_report(resolved)
    if json_output:
        with stdout_may_close():
            typer.echo(json.dumps(report, indent=2))
        return
    console = stdout_console()
    console.print(_capability_table(report["capabilities"], report["other_gpu_processes"]))
    console.print(_environment_table(report["environment"]))
