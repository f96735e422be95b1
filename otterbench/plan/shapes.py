"""Where plan reads configs and model shapes: local files, shipped names or cached hub ids, built on meta.

No weights are ever made: `instantiate_meta` builds the architecture on the `meta` device, so a 70B model
costs nothing to inspect. Parameter counts come from the model itself (tied tensors counted once).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import otterbench
from otterbench.otter.spec import BaseDims
from otterbench.otter.support import SUPPORTED_MODEL_TYPES

if TYPE_CHECKING:  # torch and transformers load where a config is read or a model built, not on import
    import torch
    from transformers import PretrainedConfig

SHIPPED_CONFIGS = Path(otterbench.__file__).resolve().parent / "suites" / "configs"
REQUIRED_FIELDS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "vocab_size",
)
Head = Literal["causal-lm", "reward"]


class PlanError(ValueError):
    """Bad input to the planner; the message is one line naming the source, the problem and the fix."""


def _read_json(path: Path, source: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise PlanError(
            f"{source}: {path} is not JSON ({error.msg}, line {error.lineno}); pass a config.json"
        ) from None
    if not isinstance(data, dict):
        raise PlanError(f"{source}: {path} holds a JSON {type(data).__name__}, expected an object")
    return data


def _raw_config(source: str) -> dict[str, Any]:
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise PlanError(f"{source}: folder has no config.json; pass the folder holding one or the file")
        return _read_json(path / "config.json", source)
    if path.is_file():
        return _read_json(path, source)
    if (SHIPPED_CONFIGS / f"{source}.json").is_file():
        return _read_json(SHIPPED_CONFIGS / f"{source}.json", source)
    if source.endswith(".json") or source.startswith((".", "/", "~")) or source.count("/") != 1:
        shipped = ", ".join(sorted(p.stem for p in SHIPPED_CONFIGS.glob("*.json")))
        raise PlanError(f"{source}: file not found, and not a shipped config (one of: {shipped})")
    from transformers import PretrainedConfig

    try:
        data, _ = PretrainedConfig.get_config_dict(source, local_files_only=True)
    except (OSError, ValueError):
        raise PlanError(
            f"{source}: no such file, and not a hub id cached locally; run `hf download {source} "
            "config.json` where there is network, or pass a local config.json"
        ) from None
    return data


def read_config(source: str) -> dict[str, Any]:
    """The validated config.json of a local file (or its folder), a shipped name, or a cached hub id."""
    raw = _raw_config(source)
    model_type = raw.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise PlanError(
            f"{source}: unknown architecture model_type={model_type!r}; plan supports "
            f"{', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    missing = [name for name in REQUIRED_FIELDS if name not in raw]
    if missing:
        raise PlanError(f"{source}: config is missing fields {missing}; add them to its config.json")
    return raw


def config_from_dict(raw: dict[str, Any]) -> PretrainedConfig:
    """A transformers config of the model type `raw` names."""
    from transformers import AutoConfig

    return AutoConfig.for_model(raw["model_type"], **{k: v for k, v in raw.items() if k != "model_type"})


def instantiate_meta(config: PretrainedConfig, head: Head) -> torch.nn.Module:
    """The architecture on the meta device: shapes only, no weights, no memory."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    if head == "reward":
        config = copy.deepcopy(config)
        config.num_labels = 1  # the ARGS reward-model shape: one score per sequence
    with torch.device("meta"):
        if head == "reward":
            return AutoModelForSequenceClassification.from_config(config)
        return AutoModelForCausalLM.from_config(config)


def kv_bytes_per_token(num_layers: int, num_kv_heads: int, head_dim: int, bytes_per_element: int) -> int:
    """KV cache held per token and sequence: a key and a value of g*hd elements in each of L layers."""
    return 2 * num_layers * num_kv_heads * head_dim * bytes_per_element


@dataclass(frozen=True)
class ModelShape:
    """One model's sizes the cost formulas (plan/flops.py) read, from its meta instantiation."""

    source: str
    head: str
    parameters: int
    linear_parameters: int
    head_parameters: int  # of those, the output heads': they run only where an output is read
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int


@lru_cache(maxsize=32)
def _shape_of(raw_json: str, source: str, head: Head) -> ModelShape:
    import torch

    config = config_from_dict(json.loads(raw_json))
    model = instantiate_meta(config, head)
    linear = sum(p.numel() for m in model.modules() if isinstance(m, torch.nn.Linear) for p in m.parameters())
    output_head = model.score if head == "reward" else model.get_output_embeddings()
    dims = BaseDims.from_config(config)
    return ModelShape(
        source=source,
        head=head,
        parameters=sum(p.numel() for p in model.parameters()),  # shared (tied) tensors once
        linear_parameters=linear,
        head_parameters=sum(p.numel() for p in output_head.parameters()),
        num_layers=dims.num_layers,
        num_heads=dims.num_heads,
        num_kv_heads=dims.num_kv_heads,
        head_dim=dims.head_dim,
        vocab_size=dims.vocab_size,
    )


def model_shape(source: str, head: Head) -> ModelShape:
    """Parameter counts and attention sizes of the model `source` names, built with `head` (cached)."""
    return shape_of_config(read_config(source), source, head)


def shape_of_config(raw: dict[str, Any], source: str, head: Head) -> ModelShape:
    """The ModelShape of a config.json's contents (`source` only names it)."""
    return _shape_of(json.dumps(raw, sort_keys=True, default=str), source, head)
