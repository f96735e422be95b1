"""preflight: everything a run can check in the parent before any process starts or any weight loads.

Options, device and dtype, the output folder, the prompts, each model's config (family, head, vocabulary),
the base's tokenizer, prompt + new tokens against every model's context and the base's KV cache against the
device's memory, and a saved Otter folder against the base (its architecture, sizes and weights) and the
task its Otter arms answer. Every problem is collected and raised at once,
one line each naming the file or option and the fix (exit code 2 at the command line).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from otterbench.arms.registry import arm_info, knob_problems, model_roles
from otterbench.backends import backend_spec, refusal
from otterbench.dtypes import DTYPE_BYTES, torch_dtype
from otterbench.env import device_memory_bytes, resolve_device
from otterbench.models.checks import causal_lm_class, config_problems, model_config
from otterbench.models.fingerprint import weights_fingerprint
from otterbench.models.roles import role_flag
from otterbench.models.sources import tokenizer_for
from otterbench.otter.io import distilled_task, read_otter_config, saved_otter_problems
from otterbench.otter.spec import (
    BaseDims,
    OtterSpec,
    base_tensor_parallel_problems,
    divisible_spec,
    tensor_parallel_problems,
)
from otterbench.paths import writable_problem
from otterbench.plan.shapes import kv_bytes_per_token
from otterbench.run.catalogue import Catalogue, ModelEntry
from otterbench.run.config import RunConfig, RunInputError
from otterbench.run.quick_checks import device_map_problems
from otterbench.run.suite import load_prompts
from otterbench.workload import build_workload

_GIB = 2**30


class PreflightError(RunInputError):
    """Every problem preflight found; `problems` holds one line each, the message joins them."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def preflight(
    configs: RunConfig | Sequence[RunConfig], numbers: Mapping[str, Any] | None = None
) -> list[Catalogue]:
    """Check each run config (and the finiteness of `numbers`: option -> value) before any work starts;
    returns each config's model catalogue, read while checking."""
    problems = [
        f"{option}={value!r} is not a finite number: pass a real number"
        for option, value in (numbers or {}).items()
        if isinstance(value, float) and not math.isfinite(value)
    ]
    catalogues = []
    for config in [configs] if isinstance(configs, RunConfig) else configs:
        found, catalogue = check_run(config)
        problems += [line for line in found if line not in problems]
        catalogues.append(catalogue)
    if problems:
        raise PreflightError(problems)
    return catalogues


def run_problems(config: RunConfig) -> list[str]:
    """Every problem of one run config, one line each (empty when it can run)."""
    return check_run(config)[0]


def check_run(config: RunConfig) -> tuple[list[str], Catalogue]:
    """Every problem of one run config, one line each, and the catalogue of the models it could read."""
    problems: list[str] = []
    device = _device(config, problems)
    problems += backend_problems(config.backend.name, config.arms, device)
    problems += layout_problems(config)
    if device is not None:
        problems += device_map_problems(config.process, device.type, config.sources())
    out = writable_problem(config.out_dir, "--out")
    problems += [out] if out else []
    try:
        prompts = load_prompts(config.suite.prompts_path)
    except ValueError as error:
        problems.append(str(error))
        prompts = []
    known = len(problems)
    catalogue = _catalogue(config, problems)
    configs = {role: entry.config for role, entry in catalogue.entries.items()}
    base = configs.get("base")
    if base is None or any(line.startswith(f"base {config.source('base')!r}") for line in problems[known:]):
        return problems, catalogue  # an unusable base: its tokenizer and sizes would only add noise
    path = config.insertion.path
    if path and any(arm_info(arm).role == "otter" for arm in config.arms):
        weights = weights_fingerprint(config.source("base") or "")
        problems += saved_otter_problems(path, causal_lm_class(base), base, weights)
        problems += insertion_task_problems(config, path)
    problems += parallel_problems(config, config.backend.tensor_parallel_size)
    longest = _longest_prompt(config, base, prompts, problems) if prompts else None
    if longest is not None:
        problems += _context_problems(config, configs, longest)
        used = min(config.suite.num_prompts or len(prompts), len(prompts))
        problems += _memory_problems(config, base, longest, device, used)
    return problems, catalogue


def insertion_task_problems(config: RunConfig, path: str) -> list[str]:
    """A distilled insertion whose task is not the one the run's Otter arms answer: its signal was trained
    on another separate model's (ARGS' rewards read as DExperts' logit shifts...). An undistilled insertion
    is task-free."""
    try:
        task = distilled_task(read_otter_config(path))
    except ValueError:  # a broken folder: saved_otter_problems reports it
        return []
    otter_arms = [arm for arm in config.arms if arm_info(arm).role == "otter"]
    wrong = [arm for arm in otter_arms if arm_info(arm).task not in (None, task)]
    if task is None or not wrong:
        return []
    tasks = ", ".join(dict.fromkeys(str(arm_info(arm).task) for arm in wrong))
    return [
        f"--otter {path} was distilled for task {task}, but this run's Otter arm(s) {', '.join(wrong)} "
        f"answer task {tasks} (suite {config.suite.name}, task {config.suite.task}): pass an insertion "
        f"distilled for {tasks} (`otterbench distill --suite {config.suite.name}`), or drop --otter"
    ]


def backend_problems(engine: str, arms: Sequence[str], device: Any) -> list[str]:
    """The backend unavailable on `device`, or refusing some of the arms: one line each."""
    spec = backend_spec(engine)
    why = spec.unavailable(device) if device is not None else None
    if why:
        return [f"--engine={engine!r} is unavailable here: {why}"]
    return [line for arm in arms if (line := refusal(engine, arm_info(arm)))]


def layout_problems(config: RunConfig) -> list[str]:
    """An Otter layout the backend does not serve, for a run with an Otter arm: one line."""
    spec, layout = backend_spec(config.backend.name), config.insertion.layout
    if layout in spec.layouts:
        return []
    if not any(arm_info(arm).role == "otter" for arm in config.arms):
        return []
    return [
        f"--engine={spec.name!r} serves the Otter layout(s) {', '.join(spec.layouts)}, not {layout!r}: "
        f"pass --layout {spec.layouts[0]} or run the Otter arms under another engine"
    ]


def _device(config: RunConfig, problems: list[str]) -> Any:
    try:
        device = resolve_device(config.device)
        torch_dtype(config.dtype, device.type)
    except ValueError as error:
        problems.append(str(error))
        return None
    return device


def _catalogue(config: RunConfig, problems: list[str]) -> Catalogue:
    """Every model the arms load, its config read once; problems for missing or unusable ones."""
    configs: dict[str, Any] = {}
    entries: dict[str, ModelEntry] = {}
    roles = sorted(model_roles(config.arms), key=lambda role: role != "base")  # base first: others match it
    for role in roles:
        source = config.source(role)
        if not source:
            problems.append(
                f"profile {config.profile!r} names no {role} model: pass {role_flag(role)} ID_OR_PATH "
                f"or add `{role} = ...` to the suite's profile"
            )
            continue
        try:
            configs[role] = model_config(source, role)
        except ValueError as error:
            problems.append(str(error))
            continue
        base_vocab = getattr(configs.get("base"), "vocab_size", None)
        problems += config_problems(role, source, configs[role], base_vocab)
        entries[role] = ModelEntry(role, source, configs[role])
    return Catalogue(entries)


def _longest_prompt(config: RunConfig, base: Any, prompts: list[str], problems: list[str]) -> int | None:
    """Tokens in the longest prompt the run will use, tokenised by the base's own tokenizer."""
    source, suite = config.source("base"), config.suite
    try:
        tokenizer = tokenizer_for(source)
        if len(tokenizer) > base.vocab_size:
            problems.append(
                f"base {source!r}: its tokenizer has {len(tokenizer)} tokens but the model only "
                f"{base.vocab_size} embeddings: pass --base a folder whose tokenizer matches its config"
            )
            return None
        workload = build_workload(
            prompts,
            tokenizer,
            batch_size=suite.batch_size,
            max_new_tokens=suite.max_new_tokens,
            seed=suite.seed,
            knobs=suite.knobs,
            num_prompts=min(suite.num_prompts, len(prompts)) if suite.num_prompts else None,
        )
    except ValueError as error:
        problems.append(f"{suite.prompts_path}: {error}")
        return None
    knob_lines = knob_problems(workload.knobs, workload.vocab_size)
    if knob_lines:
        problems += [f"{suite.prompts_path}: {line}" for line in knob_lines]
        return None
    return max(len(row) for row in workload.prompt_ids)


def _context_problems(config: RunConfig, configs: dict[str, Any], longest: int) -> list[str]:
    """Prompt + new tokens beyond the smallest max_position_embeddings of the run's models."""
    needed = longest + config.suite.max_new_tokens
    contexts = {role: getattr(cfg, "max_position_embeddings", None) for role, cfg in configs.items()}
    short = {role: context for role, context in contexts.items() if context is not None and needed > context}
    if not short:
        return []
    models = ", ".join(f"{role} {config.source(role)!r}" for role in short)
    return [
        f"{config.suite.prompts_path}: the longest prompt is {longest:,} tokens + --max-new-tokens "
        f"{config.suite.max_new_tokens:,} = {needed:,} > max_position_embeddings {min(short.values()):,} "
        f"({models}): shorten the prompts or lower --max-new-tokens"
    ]


def _memory_problems(config: RunConfig, base: Any, longest: int, device: Any, prompts: int) -> list[str]:
    """The base's KV cache alone (a lower bound on any arm's memory) beyond the device's memory.

    A batch holds at most the `prompts` the run decodes, so a --batch-size above that costs nothing here.
    """
    if device is None:
        return []
    try:
        dims = BaseDims.from_config(base)
    except (AttributeError, TypeError):  # an unsupported family, already reported
        return []
    per_token = kv_bytes_per_token(
        dims.num_layers, dims.num_kv_heads, dims.head_dim, DTYPE_BYTES[config.dtype]
    )
    rows, tokens = min(config.suite.batch_size, prompts), longest + config.suite.max_new_tokens
    spread = bool(config.device_map())
    needed, available = per_token * rows * tokens, device_memory_bytes(device, every_gpu=spread)
    if needed <= available:
        return []
    where = "the visible GPUs" if spread and device.type == "cuda" else str(device)
    return [
        f"--batch-size {rows:,} x {tokens:,} tokens (longest prompt {longest:,} + --max-new-tokens "
        f"{config.suite.max_new_tokens:,}): the base's KV cache alone needs {needed / _GIB:,.1f} GiB "
        f"({per_token:,} bytes/token in {config.dtype}), more than the {available / _GIB:,.1f} GiB of "
        f"{where}: lower --batch-size or --max-new-tokens"
    ]


def parallel_problems(config: RunConfig, size: int) -> list[str]:
    """Why `size` tensor-parallel ranks cannot split the run's base or its fused Otter checkpoint, one line
    each naming sizes that divide. A fresh insertion is sized for `size` already (OtterSpec.from_ratio's
    tensor_parallel_size); a distilled one (--otter DIR) keeps the sizes it was trained with."""
    if size <= 1:
        return []
    source = config.source("base")
    try:
        dims = BaseDims.from_config(model_config(source, "base"))
    except (ValueError, AttributeError, TypeError):  # reported by run_problems
        return []
    flag = f"--tensor-parallel-size {size}"
    base = base_tensor_parallel_problems(dims, size)
    if base:
        sizes = [n for n in range(1, size) if not base_tensor_parallel_problems(dims, n)]
        return [f"{flag}: the base {source!r} cannot be split ({'; '.join(base)}): use one of {sizes}"]
    path = config.insertion.path
    if not path or not any(arm_info(arm).role == "otter" for arm in config.arms):
        return []
    try:
        spec = OtterSpec.from_dict(read_otter_config(path)["spec"])
    except (ValueError, KeyError, TypeError):  # a broken folder: run_problems reports it
        return []
    otter = tensor_parallel_problems(dims, spec, size)
    if not otter:
        return []
    fix = divisible_spec(dims, spec, size)
    return [
        f"{flag}: the Otter insertion {path} cannot be split ({'; '.join(otter)}): distill one "
        f"with extra_kv_heads={fix.extra_kv_heads} (query heads {dims.num_heads}+{fix.query_heads_for(dims)}) "
        f"and extra_intermediate_size={fix.extra_intermediate_size}, or pass no --otter (a fresh insertion "
        f"is sized for {size} ranks)"
    ]
