"""The yardstick of non-disruption: how far the base model's own logits move under harmless changes.

In bf16 a model disagrees with itself when only the arithmetic around it changes, so Otter's deviation means
something only beside that figure, measured on the same workload (docs/efficiency.md). Two changes, each a
lockstep of the base against itself on the reference's greedy tokens (the reference: the workload's own
batches, transformers' dynamic KV cache, eager, as in the Otter check):
- `batch_composition`: the same prompts grouped differently: each prompt alone when the workload batches
  several, else up to `MERGED_BATCH` consecutive prompts in one left-padded batch (none with one prompt);
- `engine`: the other step engine: the compiled one (static KV caches with a capacity-wide mask, and
  torch.compile of each decode step, sized for the whole workload as the arms' are) against eager. In a
  compiled run its graphs are the base arm's, so with the run's shared compile cache they are cache hits.
  Where torch.compile cannot run, or with `yardstick_engine="static"` (the cheap stand-in), the static
  cache path runs uncompiled instead; the entry's `engines` says which ran.
Every prompt position and every cached decode step is compared, as in the Otter check (no full forward).
Run in the Otter arm's process after its memory phases closed: a check, not serving; each change's wall
time (`seconds`, compiling included) is recorded beside it.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch

from otterbench.arms.base import Tally
from otterbench.arms.decoding import CachedLM, greedy
from otterbench.backends.compiled import SPEC as COMPILED
from otterbench.backends.step import EAGER, Engine, compile_unavailable
from otterbench.otter.disruption import RunningDeviation
from otterbench.workload import Batch, Workload

MERGED_BATCH = 4  # prompts merged into one left-padded batch when the workload decodes them one at a time


class _Rows:
    """Consecutive prompts decoded as one or more batches, each with its own cache; rows keep prompt order."""

    def __init__(self, model: Any, batches: list[Batch], engine: Engine) -> None:
        tally = Tally()
        self.parts = [(CachedLM(model, "llm", tally, engine), batch) for batch in batches]

    def start(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Prefill: logits at every real prompt position [n, V] (row-major), and at the last one [R, V]."""
        outputs = [(lm.start(batch, all_positions=True).logits, batch) for lm, batch in self.parts]
        prompt = torch.cat([logits[batch.attention_mask.bool()] for logits, batch in outputs])
        return prompt, torch.cat([logits[:, -1] for logits, _ in outputs])

    def feed(self, tokens: torch.Tensor) -> torch.Tensor:
        """One cached step of every row on `tokens` [R, 1]; logits [R, V]."""
        logits, first = [], 0
        for lm, batch in self.parts:
            rows = batch.input_ids.shape[0]
            logits.append(lm.feed(tokens[first : first + rows]).logits[:, -1])
            first += rows
        return torch.cat(logits)


def _batches(workload: Workload, rows: tuple[tuple[int, ...], ...], size: int, device: Any) -> list[Batch]:
    return list(dataclasses.replace(workload, prompt_ids=rows, batch_size=size).batches(device))


def _compare(
    model: Any,
    workload: Workload,
    device: torch.device,
    size: int,
    engine: Engine,
    deviation: RunningDeviation,
) -> None:
    """The base on the workload's batches (eager) against itself regrouped into batches of `size` under
    `engine`, fed the reference's greedy tokens; every position goes into `deviation`."""
    group = max(size, workload.batch_size)  # both groupings split these consecutive prompts exactly
    for start in range(0, workload.num_prompts, group):
        rows = workload.prompt_ids[start : start + group]
        if engine.static:
            engine.begin(dataclasses.replace(workload, prompt_ids=rows))  # caches sized for these prompts
        reference = _Rows(model, _batches(workload, rows, workload.batch_size, device), EAGER)
        changed = _Rows(model, _batches(workload, rows, size, device), engine)
        (ref_prompt, ref_last), (new_prompt, _) = reference.start(), changed.start()
        deviation.add(ref_prompt, new_prompt)
        token = greedy(ref_last)
        for _ in range(workload.max_new_tokens - 1):
            ref_step = reference.feed(token)
            deviation.add(ref_step, changed.feed(token))
            token = greedy(ref_step)


def engine_change(choice: str, device: torch.device) -> tuple[Engine, str]:
    """The engine set against eager (`choice`: "compiled" or "static") and the change's description."""
    reason = compile_unavailable(device) if choice == "compiled" else "the static stand-in was asked for"
    if reason is None:
        compiled = Engine(static=True, compiled=True, name=COMPILED.name)
        return compiled, f"{EAGER.name} vs {COMPILED.name} engine (static KV cache + torch.compile)"
    return Engine(static=True), _stand_in(reason)


def _stand_in(reason: str) -> str:
    return f"dynamic vs static KV cache, uncompiled ({reason})"


def _engine_entry(base: Any, workload: Workload, device: torch.device, choice: str) -> dict[str, Any]:
    """The `engine` change; a compile that fails falls back to the stand-in, saying why (as the arms do)."""
    engine, change = engine_change(choice, device)
    try:
        return {"change": change, **_against(base, workload, device, engine)}
    except Exception as error:  # noqa: BLE001 — dynamo/inductor failures have many types; the check goes on
        if not engine.compiled:
            raise
        first_line = (str(error).strip().splitlines() or [""])[0][:200]
        change = _stand_in(f"torch.compile failed: {type(error).__name__}: {first_line}")
        return {"change": change, **_against(base, workload, device, Engine(static=True))}


def _against(base: Any, workload: Workload, device: torch.device, engine: Engine) -> dict[str, Any]:
    engine.begin(workload)  # the whole workload's capacity first: the shapes (and graphs) the arms compile
    return {
        "engines": [EAGER.name, engine.name],
        **_timed(base, workload, device, workload.batch_size, engine),
    }


def composition_change(workload: Workload) -> tuple[int, str] | None:
    """(batch size, description) of the other grouping of the workload's prompts; None with one prompt."""
    if workload.batch_size > 1:
        return 1, f"each prompt alone vs left-padded batches of {workload.batch_size}"
    merged = min(MERGED_BATCH, workload.num_prompts)
    if merged < 2:
        return None
    return merged, f"left-padded batches of {merged} vs each prompt alone"


def _timed(base: Any, workload: Workload, device: torch.device, size: int, engine: Engine) -> dict[str, Any]:
    deviation, start = RunningDeviation(), time.perf_counter()
    _compare(base, workload, device, size, engine, deviation)
    return {**deviation.to_dict(), "seconds": time.perf_counter() - start}


@torch.inference_mode()
def measure_yardstick(
    base: Any, workload: Workload, device: torch.device, engine_choice: str = "compiled"
) -> dict[str, Any]:
    """The base's own deviation under each harmless change, and the largest of them (results.json's block)."""
    changes = {}
    regroup = composition_change(workload)
    if regroup is not None:
        changes["batch_composition"] = {
            "change": regroup[1],
            **_timed(base, workload, device, regroup[0], EAGER),
        }
    changes["engine"] = _engine_entry(base, workload, device, engine_choice)
    return {
        "scope": "every prompt position and cached decode step of the workload",
        "max_abs_logit_diff": max(change["max_abs_logit_diff"] for change in changes.values()),
        "argmax_agreement": min(change["argmax_agreement"] for change in changes.values()),
        "changes": changes,
    }
