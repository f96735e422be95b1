"""The planner against what a run measures on the tiny profile: weights exactly, peak memory within 15%."""

from __future__ import annotations

import json
from pathlib import Path

from repo_scripts import load_script
from typer.testing import CliRunner

from otterbench.cli import app
from otterbench.models.tiny import build_tiny_model
from otterbench.otter import OtterSpec, insert_otter
from otterbench.plan.costs import plan_costs
from otterbench.plan.inputs import PlanInputs
from otterbench.trackers.memory import weights_bytes

PEAK_TOLERANCE = 0.15  # documented in docs/planner.md: at tiny scale the runtime floor dominates the peak


def save_configs(tmp_path: Path) -> tuple[str, str, object, object]:
    base, reward = build_tiny_model("base"), build_tiny_model("reward_model")
    base.config.save_pretrained(tmp_path / "base")
    reward.config.save_pretrained(tmp_path / "rm")
    return str(tmp_path / "base"), str(tmp_path / "rm"), base, reward


def test_planner_weights_equal_measured_weights_exactly(tmp_path) -> None:
    base_dir, rm_dir, base, reward = save_configs(tmp_path)
    plan = plan_costs(
        PlanInputs(base=base_dir, models={"reward_model": rm_dir}, dtype="float32", ratio=0.125)
    )
    otter = insert_otter(base, OtterSpec.from_ratio(base.config, 0.125))
    assert plan.arm("base").weights_bytes == weights_bytes(base)
    assert plan.arm("args-faithful").weights_bytes == weights_bytes(base, reward)
    assert plan.arm("args-optimized").weights_bytes == weights_bytes(base, reward)
    assert plan.arm("otter-args").weights_bytes == weights_bytes(base) + weights_bytes(otter.inserted)


def test_planner_peak_within_tolerance_of_measured_cpu_peak(tmp_path) -> None:
    """Predicted peak = measured runtime floor (no model loaded) + the planner's weights + KV cache."""
    base_dir, rm_dir, _, _ = save_configs(tmp_path)
    args = [
        "run",
        "--suite",
        "safety",
        "--arms",
        "base,args-faithful,otter-args",
        "--out",
        str(tmp_path / "out"),
        "--device",
        "cpu",
        "--num-prompts",
        "4",
        "--max-new-tokens",
        "4",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--batch-size",
        "4",
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)
    context = results["workload"]["prompt_tokens"] // results["workload"]["num_prompts"] + 4
    plan = plan_costs(
        PlanInputs(
            base=base_dir,
            models={"reward_model": rm_dir},
            dtype="float32",
            ratio=0.125,
            k=10,
            batch_size=4,
            context=context,
        )
    )
    for arm in results["arms"]:
        memory = arm["memory"]
        predicted = memory["by_phase"]["runtime"]["peak_bytes"] + plan.arm(arm["name"]).space_bytes
        assert abs(predicted - memory["peak_bytes"]) <= PEAK_TOLERANCE * memory["peak_bytes"], (
            arm["name"],
            predicted,
            memory["peak_bytes"],
        )


def test_the_gpu_summary_sets_otters_overhead_beside_its_extra_bytes_and_the_limit() -> None:
    # scripts/gpu_summary.py prints two of issue 20's GPU goals: Otter's per-token overhead over base against
    # its share of extra bytes, and how far each measured decode saving sits from its limit
    module = load_script("gpu_summary")

    def arm(name: str, role: str, tpot: float, step_bytes: int) -> dict:
        latency = {"tpot_s": {"median": tpot}}
        return {
            "name": name,
            "role": role,
            "status": "ok",
            "latency": latency,
            "efficiency": {"bytes_per_step": step_bytes},
        }

    data = {"arms": [arm("base", "base", 0.010, 1000), arm("otter-args", "otter", 0.0115, 1100)]}
    (row,) = module.overhead_rows("r", data)
    assert "TPOT +15.0%, bytes per step +10.0%: 1.50x its extra-bytes share" in row
    assert module._to_limit(83.1, 85.0) == "  decode - limit -1.9 points"
    environment = {
        "memory_bandwidth": {"peak_bytes_per_s": 4e12},
        "compute_peak": {"peak_flops_per_s": 8e14, "dtype": "bfloat16"},
    }
    assert "4,000.0 GB/s, 800.0 TFLOP/s bfloat16 (ridge 200.0 FLOP/byte)" in module.peaks_line(
        "r", {"environment": environment}
    )
