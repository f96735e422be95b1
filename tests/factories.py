"""Synthetic, schema-valid results for tests: seeded numpy samples, several repeats, no model run."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from otterbench.arms.registry import arm_role
from otterbench.results.files import (
    ARMS_FILE,
    RESULTS_FILE,
    arms_frame,
    compute_savings,
    write_csv_atomic,
    write_json_atomic,
)
from otterbench.results.stats import summarize

SAFETY_ARMS = ("base", "args-faithful", "args-optimized", "otter-args")
GiB = 1 << 30

# per-token seconds and extra weights (GiB) of each arm, roughly the shape the paper reports at 7B scale
_TPOT_S = {
    "base": 0.010,
    "args-faithful": 0.120,
    "args-optimized": 0.030,
    "args-token": 0.021,
    "otter-args": 0.0105,
    "dexperts-faithful": 0.090,
    "dexperts-cached": 0.028,
    "otter-dexperts": 0.0104,
}
_EXTRA_WEIGHTS_GIB = {"separate": 12.5, "otter": 1.8}


def _latency(rng: np.random.Generator, arm: str, repeats: int, steps: int, batches: int) -> dict:
    """ttft one per batch per repeat, tpot every decode step of every repeat, total one per repeat."""
    tpot = rng.normal(_TPOT_S[arm], _TPOT_S[arm] * 0.03, size=repeats * steps * batches).clip(min=1e-6)
    ttft = rng.normal(0.05, 0.002, size=repeats * batches).clip(min=1e-6)
    total = tpot.reshape(repeats, -1).sum(axis=1) + ttft.reshape(repeats, -1).sum(axis=1)
    return {"ttft_s": summarize(ttft), "tpot_s": summarize(tpot), "total_s": summarize(total)}


def _memory(arm: str, role: str) -> dict:
    base = 13 * GiB
    separate = int(_EXTRA_WEIGHTS_GIB["separate"] * GiB) if role == "separate" else 0
    inserted = int(_EXTRA_WEIGHTS_GIB["otter"] * GiB) if role == "otter" else 0
    weights = base + separate + inserted
    runtime = {"base": 1 * GiB, "separate": 3 * GiB, "otter": int(1.1 * GiB)}[role]
    peak = weights + runtime
    return {
        "peak_bytes": peak,
        "weights_bytes": weights,
        "method": "nvml",
        "by_phase": {"prefill": {"peak_bytes": peak - GiB // 2}, "decode": {"peak_bytes": peak}},
        "weights_by_component": {"base": base, "separate": separate, "inserted": inserted},
        "notes": [],
    }


def make_arm(rng: np.random.Generator, name: str, repeats: int, steps: int, batches: int) -> dict:
    """One finished arm with seeded latency samples and fixed memory readings."""
    role = arm_role(name)
    latency = _latency(rng, name, repeats, steps, batches)
    energy_samples = np.asarray(latency["total_s"]["samples"]) * 300.0  # a steady 300 W draw
    return {
        "name": name,
        "role": role,
        "status": "ok",
        "error": None,
        "new_tokens": steps,
        "token_ids_hash": f"sha256:{name}",
        "latency": latency,
        "memory": _memory(name, role),
        "energy": {
            "energy_j": summarize(energy_samples, unit="J"),
            "j_per_token": float(np.median(energy_samples)) / (steps * batches),
            "supported": True,
            "note": "NVML total energy counter",
        },
        "calls": {"llm": steps * batches},
        "rows_scored": None,
    }


def make_results(
    suite: str = "safety",
    arms: tuple[str, ...] = SAFETY_ARMS,
    seed: int = 0,
    repeats: int = 5,
    steps: int = 16,
    batch_size: int = 4,
    num_prompts: int = 8,
    **config_overrides: object,
) -> dict:
    """A schema-valid results dict with every arm finished and savings computed from its samples."""
    rng = np.random.default_rng(seed)
    batches = -(-num_prompts // batch_size)
    arm_records = [make_arm(rng, name, repeats, steps, batches) for name in arms]
    config = {
        "suite": suite,
        "arms": list(arms),
        "profile": "paper",
        "k": 10,
        "weight": 1.0,
        "alpha": 2.0,
        "max_new_tokens": steps,
        "batch_size": batch_size,
        "num_prompts": num_prompts,
        "dtype": "bfloat16",
        "device": "cuda",
        "seed": seed,
        "repeats": repeats,
        "warmup": 1,
        **config_overrides,
    }
    return {
        "schema_version": 1,
        "run_id": f"20261126T130102Z-{seed:06x}",
        "created_utc": "2026-11-26T13:01:02Z",
        "suite": suite,
        "status": "complete",
        "isolation": "process",
        "config": config,
        "workload": {
            "fingerprint": f"wl-{suite}-{num_prompts}",
            "num_prompts": num_prompts,
            "prompt_tokens": 40 * num_prompts,
            "model_fingerprints": {"llm": "llm-7b-abc", "reward": "rm-7b-def"},
        },
        "environment": {
            "device": "cuda",
            "torch": "2.11.0",
            "transformers": "5.17.0",
            "python": "3.12.3",
            "git_commit": "0123456789abcdef",
            "git_dirty": False,
            "gpu_name": "NVIDIA H100 80GB HBM3",
        },
        "otter": {
            "layout": "split",
            "distilled": True,
            "path": "otters/safety",
            "spec": {"extra_hidden_size": 512, "extra_kv_heads": 4, "extra_intermediate_size": 1376},
            "inserted_parameters": 900_000_000,
        },
        "non_disruption": {
            "layout": "split",
            "exact": True,
            "max_abs_logit_diff": 0.0,
            "argmax_agreement": 1.0,
        },
        "arms": arm_records,
        "savings": compute_savings(arm_records, n_boot=200),
    }


def scale_arm_latency(results: dict, factor: float, arm_name: str | None = None) -> dict:
    """A copy whose arm `arm_name` (default: the Otter arms) has every latency sample multiplied by `factor`."""
    scaled = copy.deepcopy(results)
    for arm in scaled["arms"]:
        if arm["name"] == arm_name or (arm_name is None and arm["role"] == "otter"):
            for metric in ("ttft_s", "tpot_s", "total_s"):
                arm["latency"][metric] = summarize(np.asarray(arm["latency"][metric]["samples"]) * factor)
    scaled["savings"] = compute_savings(scaled["arms"], n_boot=200)
    return scaled


def jitter_repeats(results: dict, sigma: float, seed: int = 0) -> dict:
    """A copy whose every repeat of every arm runs at a random speed (log-normal, `sigma`): a noisy machine.

    Each repeat's ttft, tpot and total samples share one factor, as a slow spell of a shared host would.
    """
    rng = np.random.default_rng(seed)
    noisy = copy.deepcopy(results)
    for arm in noisy["arms"]:
        repeats = arm["latency"]["total_s"]["n"]
        factors = rng.lognormal(0.0, sigma, size=repeats)
        for metric in ("ttft_s", "tpot_s", "total_s"):
            samples = np.asarray(arm["latency"][metric]["samples"]).reshape(repeats, -1)
            arm["latency"][metric] = summarize((samples * factors[:, None]).ravel())
    noisy["savings"] = compute_savings(noisy["arms"], n_boot=200)
    return noisy


def write_run(root: Path, results: dict, name: str | None = None) -> Path:
    """Write results.json and arms.csv into root/<name or run_id>/ and return that folder."""
    run_dir = Path(root) / (name or results["run_id"])
    write_json_atomic(run_dir / RESULTS_FILE, results)
    write_csv_atomic(run_dir / ARMS_FILE, arms_frame(results))
    return run_dir
