"""Time one cached decode step of the base model and of the split, fused and packed layouts, side by side.

Each layout's extra time over the base is set against its analytic extra-FLOPs share: a ratio near 1 means
the insertion costs what its arithmetic says; well above 1 means overhead (kernel launches, copies) dominates.
Warm-up first, layouts interleaved round by round (so machine drift hits all alike), a device sync on both
sides of every timed block, raw samples kept.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from otterbench.compat import cache_kwargs, drop_last_tokens, output_cache
from otterbench.dtypes import torch_dtype
from otterbench.env import resolve_device
from otterbench.models.build import make_causal_lm
from otterbench.otter import OtterSpec, insert_otter
from otterbench.otter.spec import DEFAULT_RATIO, BaseDims
from otterbench.plan.flops import decode_flops, fused_shape, inserted_shape
from otterbench.plan.shapes import shape_of_config

LAYOUTS = ("base", "split", "fused", "packed")


@dataclass(frozen=True)
class BenchShape:
    """Model and workload sizes for the benchmark (a tiny Llama by default)."""

    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 8
    num_kv_heads: int = 2
    intermediate_size: int = 768
    vocab_size: int = 4096
    batch_size: int = 1
    context: int = 128
    ratio: float = DEFAULT_RATIO


@dataclass
class LayoutTiming:
    """Per-step decode latency samples of one layout (seconds) and what it costs over the base."""

    layout: str
    step_s: list[float] = field(default_factory=list)
    median_s: float = 0.0
    extra_time_share: float | None = None  # (t - t_base) / t_base
    extra_flops_share: float | None = None  # analytic
    ratio: float | None = None  # extra_time_share / extra_flops_share


def decode_flops_by_layout(base_config: Any, spec: OtterSpec, context: int, batch: int) -> dict[str, float]:
    """FLOPs of one decode step per layout, from the planner's formulas (plan/flops.py).

    split and packed = base + the inserted parameters only; fused = the widened checkpoint, zero blocks
    included.
    """
    dims = BaseDims.from_config(base_config)
    raw = json.loads(base_config.to_json_string(use_diff=False))
    base = decode_flops(shape_of_config(raw, "bench-base", "causal-lm"), context)
    return {
        "base": batch * base,
        "split": batch * (base + decode_flops(inserted_shape(dims, spec), context)),
        "fused": batch * decode_flops(fused_shape(base_config, spec), context),
        "packed": batch * (base + decode_flops(inserted_shape(dims, spec), context)),
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step_runner(model: Any, layout: str, ids: torch.Tensor, token: torch.Tensor) -> Callable[[], None]:
    """Prefill once; each call decodes one token then crops the cache back, so every step is the same."""
    is_otter = layout != "base"
    out = model(ids, use_cache=True)
    cache = out.past_key_values if is_otter else output_cache(out)
    kwargs = {"past_key_values": cache} if is_otter else cache_kwargs(cache)

    def step() -> None:
        model(token, use_cache=True, **kwargs)
        if is_otter and layout == "split":
            cache.drop_last_tokens(1)
        else:
            drop_last_tokens(cache, 1)

    return step


@torch.inference_mode()
def bench_insert(
    shape: BenchShape = BenchShape(),
    device: torch.device = torch.device("cpu"),
    dtype: torch.dtype = torch.float32,
    warmup: int = 5,
    repeats: int = 30,
    steps_per_sample: int = 5,
    progress: Callable[[int, int], None] | None = None,
) -> list[LayoutTiming]:
    """Median decode-step latency of base, split, fused and packed, with extra-time vs extra-FLOPs ratios."""
    base = make_causal_lm(
        "llama",
        seed=0,
        vocab_size=shape.vocab_size,
        hidden_size=shape.hidden_size,
        num_layers=shape.num_layers,
        num_heads=shape.num_heads,
        num_kv_heads=shape.num_kv_heads,
        intermediate_size=shape.intermediate_size,
    ).to(device=device, dtype=dtype)
    spec = OtterSpec.from_ratio(base.config, shape.ratio, init="normal")
    split = insert_otter(base, spec).eval()
    models = {
        "base": base,
        "split": split,
        "fused": split.to_fused().eval(),
        "packed": split.to_packed().eval(),
    }
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(3, shape.vocab_size, (shape.batch_size, shape.context), generator=generator).to(
        device
    )
    token = ids[:, -1:]
    steps = {name: _step_runner(model, name, ids, token) for name, model in models.items()}
    timings = {name: LayoutTiming(name) for name in LAYOUTS}
    for round_index in range(warmup + repeats):
        for name in LAYOUTS:
            _sync(device)
            start = time.perf_counter()
            for _ in range(steps_per_sample):
                steps[name]()
            _sync(device)
            if round_index >= warmup:
                timings[name].step_s.append((time.perf_counter() - start) / steps_per_sample)
        if progress is not None:
            progress(round_index + 1, warmup + repeats)
    flops = decode_flops_by_layout(base.config, spec, shape.context, shape.batch_size)
    return _summarise(timings, flops)


def _summarise(timings: dict[str, LayoutTiming], flops: dict[str, float]) -> list[LayoutTiming]:
    for timing in timings.values():
        timing.median_s = statistics.median(timing.step_s)
    base_time = timings["base"].median_s
    for name in LAYOUTS[1:]:
        timing = timings[name]
        timing.extra_time_share = (timing.median_s - base_time) / base_time
        timing.extra_flops_share = (flops[name] - flops["base"]) / flops["base"]
        timing.ratio = timing.extra_time_share / timing.extra_flops_share
    return [timings[name] for name in LAYOUTS]


# model shapes `bench-insert --preset` names: the tiny profile's (CPU-friendly) and a Llama-1B-like one (GPU)
PRESETS: dict[str, dict[str, int]] = {
    "tiny": {},
    "1b": {
        "hidden_size": 2048,
        "num_layers": 16,
        "num_heads": 32,
        "num_kv_heads": 8,
        "intermediate_size": 8192,
        "vocab_size": 32000,
    },
}


@dataclass
class BenchReport:
    """One bench-insert measurement: the shape, where it ran, and each layout's timing."""

    preset: str
    shape: BenchShape
    device: str
    dtype: str
    layouts: list[LayoutTiming]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for `--json`."""
        return {
            "shape": asdict(self.shape),
            "device": self.device,
            "dtype": self.dtype,
            "layouts": [asdict(timing) for timing in self.layouts],
        }


def run_bench_insert(
    preset: str = "tiny",
    device: str = "auto",
    dtype: str = "float32",
    *,
    batch_size: int = 1,
    context: int = 128,
    ratio: float = DEFAULT_RATIO,
    repeats: int = 30,
    warmup: int = 5,
    progress: Callable[[int, int], None] | None = None,
) -> BenchReport:
    """The library entry point of `bench-insert`: validate, then time base, split and fused side by side.

    A bad preset, device, dtype or shape raises ValueError with one line.
    """
    if preset not in PRESETS:
        raise ValueError(f"--preset={preset!r} is unknown; choose one of {', '.join(PRESETS)}")
    torch_device = resolve_device(device)
    torch_type = torch_dtype(dtype, torch_device.type)
    shape = BenchShape(**PRESETS[preset], batch_size=batch_size, context=context, ratio=ratio)
    timings = bench_insert(shape, torch_device, torch_type, warmup=warmup, repeats=repeats, progress=progress)
    return BenchReport(preset, shape, str(torch_device), dtype, timings)
