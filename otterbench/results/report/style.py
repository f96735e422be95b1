"""What every report figure shares: one colour per arm, units, titles naming device and layout, saving.

Figures are built as bare `Figure` objects, never through pyplot: no GUI backend, no global figure list to
leak on headless CI runners, and savefig renders with Agg.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from otterbench.arms.registry import arm_names

_PALETTE = ["#7f7f7f", "#b2182b", "#ef8a62", "#2166ac", "#762a83", "#c2a5cf", "#1b7837"]
_EXTRA_PALETTE = ["#8c510a", "#01665e", "#d6604d", "#4393c3"]
ARM_COLOURS: dict[str, str] = dict(zip(arm_names(), _PALETTE))  # later arms take the extra palette
FAILED_COLOUR = "#b2182b"
EDGE_COLOUR = "#333333"
# plain numbers on every axis, log or linear: 3, 10, 30 rather than 3x10^0, 10^1
PLAIN_TICKS = FuncFormatter(lambda value, _pos: f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}")


def arm_colour(name: str) -> str:
    """The colour of arm `name` in every figure (arms registered later get a stable extra colour)."""
    if name in ARM_COLOURS:
        return ARM_COLOURS[name]
    return _EXTRA_PALETTE[sum(name.encode()) % len(_EXTRA_PALETTE)]


def bytes_scale(max_bytes: float) -> tuple[float, str]:
    """Divisor and unit label so the largest value reads in a sensible unit."""
    return (float(1 << 30), "GiB") if abs(max_bytes) >= (1 << 30) else (float(1 << 20), "MiB")


def device_label(results: dict) -> str:
    """The device the run measured: the GPU's name, or `cpu` with its model."""
    env = results["environment"]
    if env.get("gpu_name"):
        return str(env["gpu_name"])
    return f"{env.get('device', results['config']['device'])}" + (
        f" ({env['cpu']})" if env.get("cpu") else ""
    )


def run_caption(results: dict) -> str:
    """`suite, device, layout, repeats`: what a figure title needs so it cannot be mistaken for another run."""
    ran_otter = any(arm["role"] == "otter" for arm in results["arms"])
    layout = (results.get("otter") or {}).get("layout")
    layout = f"{layout} layout" if ran_otter and layout else "no Otter arm"
    return f"{results['suite']} on {device_label(results)}, {layout}, {results['config']['repeats']} repeats"


def mark_failed(ax: Axes, arms: list[dict]) -> None:
    """Write the status in a missing bar's slot and colour its tick label, so failed arms stay visible."""
    for x, (arm, label) in enumerate(zip(arms, ax.get_xticklabels(), strict=True)):
        if arm["status"] != "ok":
            # x in data units, y in axes fraction: readable whatever the y scale (linear or log)
            ax.text(
                x,
                0.03,
                arm["status"].replace("_", " "),
                transform=ax.get_xaxis_transform(),
                rotation=90,
                ha="center",
                va="bottom",
                color=FAILED_COLOUR,
                fontsize=11,
                fontweight="bold",
            )
            label.set_color(FAILED_COLOUR)


def setup_arm_axis(ax: Axes, arms: list[dict], labels: list[str] | None = None) -> None:
    """One x slot per arm, finished or not, labelled by name (or `labels`, upright and smaller)."""
    if labels:
        ax.set_xticks(range(len(arms)), labels, fontsize=8)
    else:
        ax.set_xticks(range(len(arms)), [arm["name"] for arm in arms], rotation=20, ha="right")
    ax.set_xlim(-0.6, len(arms) - 0.4)
    ax.set_xlabel("arm")


def save_figure(fig: Figure, out_dir: Path, stem: str) -> list[Path]:
    """Write `fig` as out_dir/stem.png and .svg and return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.svg"]
    for path in paths:
        fig.savefig(path, dpi=120)
    return paths


def short_number(value: float) -> str:
    """Three significant digits without scientific notation: 3.23, 14.4, 1,318."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def arm_tick_labels(arms: list[dict], metric: str) -> list[str]:
    """Arm names with the sample count of `metric` under each: `base\\nn=180`."""
    labels = []
    for arm in arms:
        latency = arm.get("latency") if arm["status"] == "ok" else None
        labels.append(arm["name"] + (f"\nn={latency[metric]['n']}" if latency else ""))
    return labels
