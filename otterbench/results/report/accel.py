"""The accel task's figure and table: speedup and extra memory per arm, acceptance by draft position.

Built from results.json only (the `speculation` block of each speculative arm, see otterbench/results/accel.py).
"""

from __future__ import annotations

from matplotlib.figure import Figure

from otterbench.results.report.markdown import format_bytes, format_seconds
from otterbench.results.report.plots import arm_colour


def _finished(results: dict) -> list[dict]:
    """The finished speculative arms of a run."""
    return [arm for arm in results["arms"] if arm.get("speculation") and arm["status"] == "ok"]


def has_speculation(results: dict) -> bool:
    """Whether any finished arm of the run is a speculative one."""
    return bool(_finished(results))


def _speedups(results: dict) -> list[tuple[str, float, list[float] | None, float]]:
    """(arm, speedup, CI95, extra peak bytes) per finished arm; base is 1x and +0 by definition."""
    rows = []
    for arm in results["arms"]:
        spec = arm.get("speculation") or {}
        if arm["status"] != "ok":
            continue
        if arm["role"] == "base":
            rows.append((arm["name"], 1.0, None, 0.0))
        elif spec.get("speedup") is not None:
            rows.append((arm["name"], spec["speedup"], spec["speedup_ci95"], spec["extra_peak_bytes"] or 0.0))
    return rows


def plot_accel(results: dict) -> Figure:
    """Speedup over base (CI95 whiskers), extra peak memory over base, acceptance by draft position."""
    fig = Figure(figsize=(14, 4.8), layout="constrained")
    speed_ax, memory_ax, accept_ax = fig.subplots(1, 3)
    rows = _speedups(results)
    for x, (name, speedup, ci, extra) in enumerate(rows):
        colour = arm_colour(name)
        speed_ax.bar(x, speedup, color=colour, edgecolor="#333333", linewidth=0.6)
        if ci:
            speed_ax.errorbar(
                x, speedup, yerr=[[speedup - ci[0]], [ci[1] - speedup]], color="black", capsize=4
            )
        speed_ax.annotate(
            f"{speedup:.2f}x", (x, speedup), xytext=(0, 3), textcoords="offset points", ha="center"
        )
        memory_ax.bar(x, extra / (1 << 20), color=colour, edgecolor="#333333", linewidth=0.6)
    for ax in (speed_ax, memory_ax):
        ax.set_xticks(range(len(rows)), [name for name, *_ in rows])
    speed_ax.axhline(1.0, color="#555555", linestyle="--", linewidth=0.8)
    speed_ax.set_ylabel("speedup over base (median total time, CI95)")
    speed_ax.set_title("Speedup")
    memory_ax.set_ylabel("peak memory over base (MiB)")
    memory_ax.set_title(f"Extra peak memory ({results['environment']['device']})")
    for arm in _finished(results):
        rates = [
            100 * r if r is not None else float("nan") for r in arm["speculation"]["acceptance_by_position"]
        ]
        positions = range(1, len(rates) + 1)
        accept_ax.plot(positions, rates, marker="o", color=arm_colour(arm["name"]), label=arm["name"])
    longest = max((len(a["speculation"]["acceptance_by_position"]) for a in _finished(results)), default=1)
    accept_ax.set_xticks(range(1, longest + 1))
    accept_ax.set_xlabel("draft position within one verifying forward")
    accept_ax.set_ylabel("drafts accepted (%)")
    accept_ax.set_ylim(0, 105)
    accept_ax.set_title("Acceptance by draft position")
    accept_ax.legend(loc="upper right")
    distilled = (results.get("otter") or {}).get("distilled")
    fig.suptitle(
        f"Speculative decoding ({results['suite']}; Otter {'distilled' if distilled else 'undistilled'})"
    )
    return fig


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def accel_section(results: dict) -> list[str]:
    """Markdown: one row per speculative arm, then the side-by-side time and memory of each accel pair."""
    header = ["arm", "acceptance", "by position", "accepted / forward", "forwards / token", "time / token"]
    header += ["speedup [CI95]", "extra peak"]
    lines = ["## Speculative decoding", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for arm in _finished(results):
        spec = arm["speculation"]
        ci = spec["speedup_ci95"]
        speedup = "n/a" if spec["speedup"] is None else f"{spec['speedup']:.2f}x"
        speedup += f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""
        cells = [
            arm["name"],
            _pct(spec["acceptance"]),
            ", ".join(_pct(r) for r in spec["acceptance_by_position"]),
            f"{spec['accepted_per_forward']:.2f}" if spec["accepted_per_forward"] is not None else "n/a",
            f"{spec['forwards_per_token']:.2f} (+{spec['draft_forwards_per_token']:.2f} draft)",
            format_seconds(spec["time_per_token_s"]),
            speedup,
            format_bytes(spec["extra_peak_bytes"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    for saving in results["savings"]:
        if "time_per_token_s" in saving:
            per_token = ", ".join(f"{k} {format_seconds(v)}" for k, v in saving["time_per_token_s"].items())
            extra = ", ".join(f"{k} {format_bytes(v)}" for k, v in saving["extra_peak_bytes"].items())
            lines += [
                "",
                f"- {saving['otter_arm']} vs {saving['separate_arm']}: time per token {per_token}; ",
            ]
            lines[-1] += f"extra peak memory {extra}."
    return [*lines, ""]
