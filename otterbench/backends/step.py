"""The step-level decode machinery an arm drives its models with: the `eager` and `compiled` backends.

- eager: transformers as it runs out of the box: a DynamicCache growing by one position per step, every op
  dispatched from Python.
- compiled: what an inference engine gives every model: a static KV cache (allocated once per model and batch
  shape, reset and reused across batches) and a `torch.compile`d decode step (`mode="reduce-overhead"`, i.e.
  CUDA graphs, on a GPU; inductor's default mode on CPU), so a step costs the model's memory traffic and FLOPs.
  Prefill runs uncompiled (prompt lengths vary); only decode steps, whose shapes are static, are compiled.

Static shapes: the 2D attention mask is a [B, capacity] buffer whose column j describes cache slot j (zeros
past the tokens fed so far), so every decode step of a workload sees the same shapes; positions come from it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from otterbench.backends.spec import EAGER_ENGINE, STATIC_ENGINE
from otterbench.compat import STATIC_CACHE_IS_LAZY, cache_kwargs, new_static_cache
from otterbench.otter import FusedOtterModel, OtterModel
from otterbench.otter.model import OtterCache, new_dynamic_cache
from otterbench.workload import Workload, positions_from_mask

# one decode-step function serves every model, so dynamo's per-function recompile budget (default 8) must
# cover every (model, batch rows) pair a process meets; past it dynamo would silently run eager
RECOMPILE_LIMIT = 64


def compile_unavailable(device: torch.device) -> str | None:
    """Why torch.compile cannot run on `device` here, or None when it can."""
    if not hasattr(torch, "compile"):
        return f"torch {torch.__version__} has no torch.compile (needs torch >= 2.0)"
    if not STATIC_CACHE_IS_LAZY:
        return "this transformers release's StaticCache is sized up front (needs transformers >= 5)"
    if device.type == "cuda":
        return None if importlib.util.find_spec("triton") else "triton is not installed (inductor needs it)"
    if device.type != "cpu":
        return f"the compiled engine supports cpu and cuda devices, not {device.type}"
    compilers = [os.environ.get("CXX", ""), "g++", "c++", "clang++"]
    if not any(name and shutil.which(name) for name in compilers):
        return "no C++ compiler on PATH (inductor needs g++, c++ or clang++ on CPU; or set CXX)"
    return None


def is_otter(model: Any) -> bool:
    """Otter models (split or fused) take their cache as `past_key_values` on every transformers release."""
    return isinstance(model, (OtterModel, FusedOtterModel))


def lm_step(
    model: Any,
    input_ids: torch.Tensor,
    mask: torch.Tensor,
    positions: torch.Tensor,
    cache: Any,
    keep: int = 0,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One cached forward of a causal LM or Otter model: (logits [B,q,V], signal [B,q,V] or None).

    `keep` > 0 computes the vocabulary heads for the last `keep` positions only (q = keep), as inference
    engines do at prefill: the other positions' [V]-wide outputs are never read.
    """
    cache_arg = {"past_key_values": cache} if is_otter(model) else cache_kwargs(cache)
    if keep:
        cache_arg["logits_to_keep"] = keep
    out = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True, **cache_arg)
    return out.logits, getattr(out, "signal", None)


def backbone_step(
    backbone: Any, input_ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any
) -> torch.Tensor:
    """One cached forward of a reward model's decoder: last hidden states [B,q,d]."""
    out = backbone(
        input_ids=input_ids,
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
        **cache_kwargs(cache),
    )
    return out.last_hidden_state


def _clone_outputs(outputs: Any) -> Any:
    # CUDA-graph outputs live in the graph's pool and are overwritten by its next replay
    if outputs is None:  # a step that only updates its caches in place
        return None
    if isinstance(outputs, torch.Tensor):
        return outputs.clone()
    return tuple(_clone_outputs(item) if item is not None else None for item in outputs)


class Engine:
    """Eager or static-cache decode steps (compiled or not) for one arm's models; holds their static caches."""

    def __init__(
        self, static: bool = False, compiled: bool = False, note: str | None = None, name: str | None = None
    ) -> None:
        self.static = static  # static KV caches and a capacity-wide mask
        self.compiled = compiled and static  # torch.compile the decode steps
        # what an arm's record calls it: the backend spec's name (its `create` passes it), else what it is:
        # static caches uncompiled (the exact check of the decode logic) or the eager backend's steps
        self.name = name or (STATIC_ENGINE if self.static else EAGER_ENGINE)
        self.note = note  # why this engine runs instead of the one asked for, if it does
        self.capacity = 0  # cache slots per sequence for the current workload (set by `begin`)
        self._steps: dict[tuple[str, int], Callable[..., Any]] = {}
        self._caches: dict[tuple[int, int, int], Any] = {}

    def begin(self, workload: Workload) -> None:
        """Size static caches for `workload`: its longest prompt plus its N new tokens.

        Capacity only grows: a shorter run (the one-token prefill run) reuses the caches and graphs already
        built, so no second set is allocated; a longer workload frees the old caches and sizes new ones.
        """
        needed = max(len(row) for row in workload.prompt_ids) + workload.max_new_tokens
        if needed > self.capacity:
            self.capacity = needed
            self._caches.clear()

    def new_cache(self, model: Any, rows: int, extra_slots: int = 0) -> Any:
        """An empty cache for `rows` sequences: a new DynamicCache (eager) or this shape's static one, reset."""
        if not self.static:
            return (
                OtterCache(model.config) if isinstance(model, OtterModel) else new_dynamic_cache(model.config)
            )
        slots = self.capacity + extra_slots
        key = (id(model), rows, slots)
        cache = self._caches.get(key)
        if cache is None:
            cache = (
                OtterCache(model.config, max_cache_len=slots)
                if isinstance(model, OtterModel)
                else new_static_cache(model.config, slots)
            )
            self._caches[key] = cache
        else:
            cache.reset()
        return cache

    def new_mask(self, prompt_mask: torch.Tensor, extra_slots: int = 0) -> KVMask:
        """The attention mask of a decode starting from `prompt_mask` [B,P], shaped for this engine's caches."""
        return KVMask(prompt_mask, self.capacity + extra_slots if self.static else None)

    def step(self, fn: Callable[..., Any], model: Any, *args: Any) -> Any:
        """`fn(model, *args)`: one decode step, through its compiled form under the compiled engine."""
        if not self.compiled:
            return fn(model, *args)
        key = (fn.__name__, id(model))
        compiled = self._steps.get(key)
        if compiled is None:
            compiled = self._steps[key] = self._compile(fn, model)
        if args[0].device.type != "cuda":
            return compiled(*args)
        torch.compiler.cudagraph_mark_step_begin()
        return _clone_outputs(compiled(*args))

    def _compile(self, fn: Callable[..., Any], model: Any) -> Callable[..., Any]:
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
        device = next(model.parameters()).device
        mode = "reduce-overhead" if device.type == "cuda" else None  # CUDA graphs; inductor default on CPU

        def bound(*args: Any) -> Any:
            return fn(model, *args)

        return torch.compile(bound, mode=mode, dynamic=False)


EAGER = Engine()  # eager engines keep no state, so arms can share one


def select_rows(cache: Any, indices: torch.Tensor) -> None:
    """Replace a cache's rows by `rows[indices]`: in place for static caches, so their addresses stay fixed."""
    if not all(getattr(layer, "is_compileable", False) for layer in cache.layers):
        cache.batch_select_indices(indices)
        return
    for layer in cache.layers:
        if layer.is_initialized:
            layer.keys.copy_(layer.keys.index_select(0, indices))
            layer.values.copy_(layer.values.index_select(0, indices))


def compiled_engine(arm: Any, device: torch.device, name: str) -> Engine:
    """The `compiled` backend's engine (named `name`) for `arm`: static caches + torch.compile, or eager with a
    note why not."""
    static_reason = getattr(arm, "not_static", None)
    if static_reason:
        return Engine(note=f"{arm.name} runs eager: {static_reason}")
    reason = compile_unavailable(device)
    if reason:
        note = f"torch.compile is unavailable ({reason}); {arm.name} runs eager"
        print(f"otterbench: {note}", file=sys.stderr)
        return Engine(note=note)
    return Engine(static=True, compiled=True, name=name)


def warm_up_engine(arm: Any, workload: Workload, device: torch.device) -> dict[str, Any]:
    """Compile before anything is measured: one unmeasured run of `workload`; returns the record's engine fields.

    `compile_s` is that run's wall time: compiling every decode graph the workload needs, plus one pass.
    A compile error falls back to the eager engine, said in `engine_note`.
    """
    engine = arm.engine
    if not engine.compiled:
        return {"engine": engine.name, "engine_note": engine.note, "compile_s": None}
    start = time.perf_counter()
    try:
        arm.run(workload, device)
    except Exception as error:  # noqa: BLE001 — dynamo/inductor failures have many types; the run goes on eager
        first_line = (str(error).strip().splitlines() or [""])[0][:200]
        note = f"torch.compile failed ({type(error).__name__}: {first_line}); {arm.name} runs eager"
        print(f"otterbench: {note}", file=sys.stderr)
        arm.engine = Engine(note=note)
        return {"engine": arm.engine.name, "engine_note": note, "compile_s": None}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return {"engine": engine.name, "engine_note": engine.note, "compile_s": time.perf_counter() - start}


def grow_mask(attention_mask: torch.Tensor, columns: int = 1) -> torch.Tensor:
    """The mask with `columns` real (1) positions appended on the right."""
    ones = attention_mask.new_ones(attention_mask.shape[0], columns)
    return torch.cat([attention_mask, ones], dim=1)


class KVMask:
    """The 2D attention mask of a cached decode: grown by a column per fed token (eager) or a static buffer.

    Static: a [B, capacity] buffer, column j for cache slot j, zeros past the `length` tokens fed so far.
    """

    def __init__(self, prompt_mask: torch.Tensor, capacity: int | None = None) -> None:
        self.length = prompt_mask.shape[1]
        self.static = capacity is not None
        if capacity is None:
            self.tensor = prompt_mask
        else:
            self.tensor = prompt_mask.new_zeros(prompt_mask.shape[0], capacity)
            self.tensor[:, : self.length] = prompt_mask

    @property
    def fed(self) -> torch.Tensor:
        """The mask over the tokens fed so far [B, length]."""
        return self.tensor[:, : self.length]

    def grow(self, columns: int = 1) -> None:
        """Mark `columns` more tokens as fed (real)."""
        if self.static:
            self.tensor[:, self.length : self.length + columns] = 1
        else:
            self.tensor = grow_mask(self.tensor, columns)
        self.length += columns

    def positions(self, count: int) -> torch.Tensor:
        """Position ids [B, count] of the newest `count` fed tokens."""
        if not self.static:
            return positions_from_mask(self.fed)[:, -count:]
        # sliced from the whole buffer, so the strides ([capacity, 1]) are the same at every step: a
        # compiled step guards on strides and would recompile for every new length otherwise
        return positions_from_mask(self.tensor)[:, self.length - count : self.length]
