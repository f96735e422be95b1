"""Time one cached decode step of the base model, the split layout and the fused layout, side by side.

Each layout's extra time over the base is set against its analytic extra-FLOPs share: a ratio near 1 means
the insertion costs what its arithmetic says; well above 1 means overhead (kernel launches, copies) dominates.
Warm-up first, layouts interleaved round by round (so machine drift hits all alike), a device sync on both
sides of every timed block, raw samples kept.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from otterbench.compat import cache_kwargs, drop_last_tokens, output_cache
from otterbench.models.build import make_causal_lm
from otterbench.otter import OtterSpec, insert_otter
from otterbench.otter.spec import BaseDims, count_inserted_parameters

LAYOUTS = ("base", "split", "fused")


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
    ratio: float = 0.125


@dataclass
class LayoutTiming:
    """Per-step decode latency samples of one layout (seconds) and what it costs over the base."""

    layout: str
    step_s: list[float] = field(default_factory=list)
    median_s: float = 0.0
    extra_time_share: float | None = None  # (t - t_base) / t_base
    extra_flops_share: float | None = None  # analytic
    ratio: float | None = None  # extra_time_share / extra_flops_share


def decode_flops(dims: BaseDims, context: int, batch: int) -> float:
    """FLOPs of one decode step: 2 per weight of every projection and the lm_head, plus attention."""
    d, hd, h, g, m = (
        dims.hidden_size,
        dims.head_dim,
        dims.num_heads,
        dims.num_kv_heads,
        dims.intermediate_size,
    )
    per_layer = 2 * (d * h * hd * 2 + d * g * hd * 2 + 3 * d * m) + 4 * h * hd * context
    return batch * (dims.num_layers * per_layer + 2 * d * dims.vocab_size)


def extra_decode_flops(dims: BaseDims, spec: OtterSpec, context: int, batch: int, fused: bool) -> float:
    """Analytic extra FLOPs of a layout: split multiplies only inserted weights; fused also the zero blocks."""
    if fused:
        widened = BaseDims(
            **{
                **asdict(dims),
                "hidden_size": dims.hidden_size + spec.extra_hidden_size,
                "num_heads": dims.num_heads + spec.query_heads_for(dims),
                "num_kv_heads": dims.num_kv_heads + spec.extra_kv_heads,
                "intermediate_size": dims.intermediate_size + spec.extra_intermediate_size,
            }
        )
        signal = 2 * spec.extra_hidden_size * spec.signal_size(dims)
        return decode_flops(widened, context, batch) + batch * signal - decode_flops(dims, context, batch)
    matmul_weights = count_inserted_parameters(dims, spec) - dims.vocab_size * spec.extra_hidden_size
    attention = 4 * spec.query_heads_for(dims) * dims.head_dim * context * dims.num_layers
    return batch * (2 * matmul_weights + attention)


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
    """Median decode-step latency of base, split and fused, with extra-time vs extra-FLOPs ratios."""
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
    models = {"base": base, "split": split, "fused": split.to_fused().eval()}
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
    return _summarise(timings, split.dims, spec, shape)


def _summarise(
    timings: dict[str, LayoutTiming], dims: BaseDims, spec: OtterSpec, shape: BenchShape
) -> list[LayoutTiming]:
    for timing in timings.values():
        timing.median_s = statistics.median(timing.step_s)
    base_time = timings["base"].median_s
    base_flops = decode_flops(dims, shape.context, shape.batch_size)
    for name in ("split", "fused"):
        timing = timings[name]
        timing.extra_time_share = (timing.median_s - base_time) / base_time
        extra = extra_decode_flops(dims, spec, shape.context, shape.batch_size, fused=name == "fused")
        timing.extra_flops_share = extra / base_flops
        timing.ratio = timing.extra_time_share / timing.extra_flops_share
    return [timings[name] for name in LAYOUTS]
