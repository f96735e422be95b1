"""What a run settles before any arm starts: device, tokenizer, prompts, the shared workload, the environment."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any

from otterbench.dtypes import torch_dtype
from otterbench.env import describe_environment, other_gpu_processes, resolve_device
from otterbench.run.config import RunConfig, RunInputError
from otterbench.run.suite import load_prompts
from otterbench.run.workload import Workload, build_workload

TINY = "tiny"


def _tokenizer(config: RunConfig) -> Any:
    from otterbench.models.loading import load_real_tokenizer
    from otterbench.models.tokenizer import load_tokenizer

    source = config.source("base")
    return load_tokenizer() if source == TINY else load_real_tokenizer(source)


def config_fingerprint(source: str | None, role: str) -> str | None:
    """A short hash naming a model without loading its weights: its source and architecture config."""
    if source is None:
        return None
    if source == TINY:
        from otterbench.models.tiny import tiny_seed

        payload = {"source": TINY, "role": role, "seed": tiny_seed(role)}
    else:
        from otterbench.models.loading import load_config  # the loader's offline check, one-line errors

        config = load_config(source, role)
        payload = {"source": source, "config": config.to_diff_dict()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _roles(config: RunConfig) -> list[str]:
    from otterbench.arms.registry import model_roles

    return sorted(model_roles(config.arms))


def prepare_run(config: RunConfig, reporter: Any) -> tuple[dict[str, Any], Workload]:
    """Validate the device and dtype, tokenise the prompts once, describe the machine; bad input raises."""
    try:
        device = resolve_device(config.device)
        torch_dtype(config.dtype, device.type)
    except ValueError as error:
        raise RunInputError(str(error)) from None
    suite = config.suite
    prompts = load_prompts(suite.prompts_path)
    workload = build_workload(
        prompts,
        _tokenizer(config),
        batch_size=suite.batch_size,
        max_new_tokens=suite.max_new_tokens,
        k=suite.k,
        weight=suite.weight,
        alpha=suite.alpha,
        filter_p=suite.filter_p,
        seed=suite.seed,
        num_prompts=min(suite.num_prompts, len(prompts)) if suite.num_prompts else None,
    )
    if device.type == "cuda":
        others = other_gpu_processes(device)
        if others:
            reporter.warn(f"{len(others)} other process(es) use {device}: measurements may be disturbed")
    prelude = {
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "workload": {
            "fingerprint": workload.fingerprint(),
            "num_prompts": workload.num_prompts,
            "prompt_tokens": sum(len(row) for row in workload.prompt_ids),
            "model_fingerprints": {
                role: config_fingerprint(config.source(role), role) for role in _roles(config)
            },
        },
        "environment": {**describe_environment(device), "seed": suite.seed},
    }
    return prelude, workload
