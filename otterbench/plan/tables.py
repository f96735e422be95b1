"""A plan as terminal tables: every arm's predicted cost, each separate arm's predicted savings, the notes."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from otterbench.plan.costs import PlanResult

_GIB = 2**30


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
