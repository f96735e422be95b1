"""Why an arm costs what it costs: the planner's bytes and FLOPs per decode step and per prefill for the run's
own workload, the device's peaks (memory bandwidth, and FLOP/s in the run's dtype: measured once per run), and
what each arm achieved against them.

Runs in the parent, outside every measured process. The prediction uses plan/costs.py with the run's models,
task, k, batch size, dtype and layout (and every other layout, for the limits beside it), at the device's
ridge point (peak FLOP/s over peak bandwidth); its context T is the mean KV length over the decode steps (each
batch's padded prompt length plus N/2), its prompt length P the mean padded prompt length. The predicted
savings are limits: what Otter saves when every arm runs at the same efficiency (docs/planner.md). Beside them
each arm's measured efficiency: MBU = `bytes_per_step / TPOT p50 / peak bandwidth`, MFU = `flops_per_step /
TPOT p50 / peak FLOP/s`, the efficiency of its extra work over the base's, and its fixed per-step overhead
`TPOT p50 - roofline_bytes / peak` (the time a step takes beyond its roofline at peak: launches, Python,
copies the planner does not count).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import torch

from otterbench.models.sources import TINY
from otterbench.models.tiny import tiny_config

_CPU_COPY_BYTES = 256 * 2**20  # well past any last-level cache: the copy streams through DRAM
_GPU_COPY_BYTES = 2 * 2**30
_COPIES = 5
# square matmuls for the peak FLOP/s: large enough to reach the kernels' plateau (on CPU 512 already does on
# one thread; a slow dtype there stays under a second), small enough to cost little next to a run
_CPU_MATMUL = 512
_GPU_MATMUL = 8192


def _best_seconds(work: Callable[[], Any], device: torch.device) -> float:
    """The fastest of a few timed calls of `work` (CUDA events on a GPU), after one untimed call."""
    work()  # first touch: page faults, allocation and kernel selection are not throughput
    times = []
    for _ in range(_COPIES):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            work()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            begin = time.perf_counter()
            work()
            times.append(time.perf_counter() - begin)
    return min(times)


@contextmanager
def _arms_threads(device: torch.device, cpu_threads: int) -> Iterator[int]:
    """On CPU, the arms' thread count for the block (what they could reach); yields the threads in use."""
    threads = torch.get_num_threads()
    if device.type == "cpu" and cpu_threads > 0:
        torch.set_num_threads(cpu_threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(threads)
        if device.type == "cuda":
            torch.cuda.empty_cache()


def measure_peak_bandwidth(device: torch.device, cpu_threads: int = 1) -> dict[str, Any]:
    """Best of a few large copies (read + write bytes over time): a device-to-device copy on GPU, memcpy on CPU."""
    size = _GPU_COPY_BYTES if device.type == "cuda" else _CPU_COPY_BYTES
    with _arms_threads(device, cpu_threads) as threads:
        src = torch.ones(size // 4, dtype=torch.float32, device=device)
        best = _best_seconds(partial(torch.empty_like(src).copy_, src), device)
        del src
    method = "device-to-device copy" if device.type == "cuda" else f"memcpy on {threads} thread(s)"
    return {
        "peak_bytes_per_s": 2 * size / best,
        "method": f"{method}, {size // 2**20} MiB, best of {_COPIES}",
    }


def measure_peak_flops(device: torch.device, dtype: str, cpu_threads: int = 1) -> dict[str, Any]:
    """Best of a few square matmuls (2n^3 FLOPs each) in the run's dtype, on the arms' threads on CPU: the
    compute peak an arm's matmuls could reach, which with the peak bandwidth sets the device's ridge point."""
    from otterbench.dtypes import torch_dtype

    n = _GPU_MATMUL if device.type == "cuda" else _CPU_MATMUL
    with _arms_threads(device, cpu_threads) as threads:
        a = torch.randn(n, n, dtype=torch_dtype(dtype), device=device)
        best = _best_seconds(partial(torch.matmul, a, torch.randn_like(a), out=torch.empty_like(a)), device)
        del a
    where = "" if device.type == "cuda" else f" on {threads} thread(s)"
    return {
        "peak_flops_per_s": 2 * n**3 / best,
        "dtype": dtype,
        "method": f"{n}x{n} matmul in {dtype}{where}, best of {_COPIES}",
    }


def _planner_source(config: Any, catalogue: Any, role: str, scratch: Path) -> str | None:
    """What the planner reads for a role: the catalogue's config written out as config.json; a role the run
    does not load (its arms not chosen) is priced from its profile's source, the tiny profile's from code."""
    entry = catalogue.entries.get(role)
    source = config.source(role)
    if entry is None and source != TINY:
        return source
    folder = scratch / role
    folder.mkdir()
    model_config = entry.config if entry is not None else tiny_config(role)
    (folder / "config.json").write_text(model_config.to_json_string())
    return str(folder)


def mean_decode_context(workload: Any) -> int:
    """Mean KV length over every decode step: each batch's padded prompt plus N/2, weighted by its rows."""
    total, rows = 0.0, 0
    for batch in workload.batches("cpu"):
        size = batch.input_ids.shape[0]
        total += size * (batch.input_ids.shape[1] + workload.max_new_tokens / 2)
        rows += size
    return max(1, round(total / rows))


def mean_prompt_length(workload: Any) -> int:
    """Mean padded prompt length over the batches, weighted by their rows: the prefill's P."""
    total, rows = 0, 0
    for batch in workload.batches("cpu"):
        total += batch.input_ids.numel()
        rows += batch.input_ids.shape[0]
    return max(1, round(total / rows))


_LIMITS = ("space_pct", "time_roofline_pct", "prefill_pct")
_PREDICTED = ("space_pct", "time_bytes_pct", "time_flops_pct", *_LIMITS[1:])


def _savings_by_layout(results: dict[str, Any], layout: str) -> dict[str, dict[str, Any]]:
    """Each separate arm's predicted savings in the run's layout, with every layout's limits beside them."""
    by_arm = {name: {s.separate_arm: s for s in result.savings} for name, result in results.items()}
    return {
        separate: {
            **{key: getattr(saving, key) for key in _PREDICTED},
            "layout": layout,
            "by_layout": {
                name: {key: getattr(savings[separate], key) for key in _LIMITS}
                for name, savings in by_arm.items()
            },
        }
        for separate, saving in by_arm[layout].items()
    }


def predict_run(
    config: Any, catalogue: Any, workload: Any, device_type: str, ridge: float | None = None
) -> dict[str, Any]:
    """The planner's costs of every arm and its savings for this run's models, workload, dtype and layout,
    at the device's ridge point (None: the planner's default, an H100's) and, for args-vllm, with the KV
    block its engines take on `device_type`."""
    from otterbench.backends.vllm.args_engines import block_tokens
    from otterbench.models.roles import BASE_ROLE
    from otterbench.otter import read_otter_config
    from otterbench.plan.costs import plan_costs
    from otterbench.plan.inputs import PlanInputs, planned_roles, planned_tasks
    from otterbench.plan.layouts import PLANNED_LAYOUTS
    from otterbench.plan.shapes import PlanError

    suite = config.suite
    if suite.task not in planned_tasks():
        raise PlanError(f"the planner has no cost model for task {suite.task!r} yet")
    layout = config.insertion.layout
    if layout not in PLANNED_LAYOUTS:
        raise PlanError(f"the planner has no cost model for layout {layout!r} yet")
    path = config.insertion.path
    spec = read_otter_config(path)["spec"] if path else {}
    sizes = {
        "extra_hidden": spec.get("extra_hidden_size"),
        "extra_kv_heads": spec.get("extra_kv_heads"),
        "extra_ffn": spec.get("extra_intermediate_size"),
    }
    roles = planned_roles(suite.task)
    with tempfile.TemporaryDirectory() as scratch:
        sources = {
            role: _planner_source(config, catalogue, role, Path(scratch)) for role in (BASE_ROLE, *roles)
        }
        inputs = PlanInputs(
            base=sources.pop(BASE_ROLE),
            models=sources,
            task=suite.task,
            k=suite.k,
            batch_size=suite.batch_size,
            context=mean_decode_context(workload),
            prompt_length=mean_prompt_length(workload),
            dtype=config.dtype,
            layout=config.insertion.layout,
            ratio=config.insertion.ratio,
            vllm_block_size=block_tokens(device_type),
            **({} if ridge is None else {"ridge_flops_per_byte": ridge}),
            **{key: value for key, value in sizes.items() if value is not None},
        )
        results = {layout: plan_costs(inputs)}
        for other in set(PLANNED_LAYOUTS) - {layout}:
            try:  # the other layouts' limits, beside the run's; one that cannot hold the insertion is left out
                results[other] = plan_costs(replace(inputs, layout=other))
            except ValueError:
                continue
    arms = {
        arm.name: {
            "bytes_per_step": arm.bytes_per_step,
            "flops_per_step": arm.flops_per_token * suite.batch_size,
            "prefill_bytes": arm.prefill_bytes,
            "prefill_flops": arm.prefill_flops,
            "roofline_bytes": arm.roofline_bytes,
            "bound": arm.bound,
        }
        for arm in results[layout].arms
    }
    return {
        "ridge_flops_per_byte": inputs.ridge_flops_per_byte,
        "context": inputs.context,
        "prompt_length": inputs.prompt,
        "batch_size": inputs.batch_size,
        "arms": arms,
        "savings": _savings_by_layout(results, layout),
    }


def arm_efficiency(
    arm: dict[str, Any],
    prediction: dict[str, Any] | None,
    peak: float | None,
    peak_flops: float | None = None,
) -> dict | None:
    """One arm's predicted bytes and FLOPs per decode step and prefill, its bound, achieved bandwidth, MBU,
    MFU and fixed per-step overhead (None if not ok)."""
    if prediction is None or arm.get("status") != "ok" or arm["name"] not in prediction["arms"]:
        return None
    predicted = prediction["arms"][arm["name"]]
    tpot = ((arm.get("latency") or {}).get("tpot_s") or {}).get("median")
    achieved = predicted["bytes_per_step"] / tpot if tpot else None
    return {
        **predicted,
        "context": prediction["context"],
        "prompt_length": prediction["prompt_length"],
        "achieved_bytes_per_s": achieved,
        "mbu": achieved / peak if achieved is not None and peak else None,
        "mfu": predicted["flops_per_step"] / tpot / peak_flops if tpot and peak_flops else None,
        # what a step costs beyond its roofline (its bytes, or its FLOPs where compute-bound) at peak
        "overhead_s_per_step": tpot - predicted["roofline_bytes"] / peak if tpot and peak else None,
    }


def extra_efficiency(arm: dict[str, Any], base: dict[str, Any] | None, peak: float | None) -> float | None:
    """How fast an arm does its extra work over the base's, against the peak: `(roofline - base roofline) /
    (TPOT - base TPOT) / peak`, the roofline being each arm's bytes, or its FLOPs over the ridge where it is
    compute-bound (memory-bound arms: the MBU of the extra bytes). A measured saving is above its limit
    exactly when the separate arm's extra efficiency is below the Otter arm's."""
    if base is None or not peak:
        return None
    extra_time = arm["latency"]["tpot_s"]["median"] - base["latency"]["tpot_s"]["median"]
    extra_work = arm["efficiency"]["roofline_bytes"] - base["efficiency"]["roofline_bytes"]
    return extra_work / extra_time / peak if extra_time > 0 and extra_work > 0 else None


def add_efficiency(results: dict[str, Any], prediction: dict[str, Any] | None) -> None:
    """Fill each arm's `efficiency` and each saving's `predicted` block in a results document."""
    environment = results["environment"]
    peak = (environment.get("memory_bandwidth") or {}).get("peak_bytes_per_s")
    peak_flops = (environment.get("compute_peak") or {}).get("peak_flops_per_s")
    for arm in results["arms"]:
        arm["efficiency"] = arm_efficiency(arm, prediction, peak, peak_flops)
    base = next((arm for arm in results["arms"] if arm["role"] == "base" and arm["efficiency"]), None)
    for arm in results["arms"]:
        if arm["efficiency"] and arm["role"] != "base":
            arm["efficiency"]["extra_efficiency"] = extra_efficiency(arm, base, peak)
    for saving in results["savings"]:
        saving["predicted"] = (prediction or {}).get("savings", {}).get(saving["separate_arm"])


def run_efficiency_inputs(
    config: Any, catalogue: Any, workload: Any, device: torch.device, warn: Callable[[str], None]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The device's peak bandwidth and peak FLOP/s in the run's dtype (measured now, in the parent), as
    results.json's environment records them, and the planner's prediction for the run at their ridge point."""
    from otterbench.plan.shapes import PlanError
    from otterbench.results.summary_efficiency import ridge_point

    threads = config.process.cpu_threads
    measured = {
        "memory_bandwidth": measure_peak_bandwidth(device, threads),
        "compute_peak": measure_peak_flops(device, config.dtype, threads),
    }
    ridge = ridge_point(measured)  # the environment's keys: results/summary_efficiency.py reads it alike
    try:
        return measured, predict_run(config, catalogue, workload, device.type, ridge)
    except (PlanError, ValueError, OSError) as error:  # a model the planner cannot price: no prediction
        warn(f"no predicted costs for this run: {error}")
        return measured, None
