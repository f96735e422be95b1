"""One entry point for every model otterbench runs: the tiny profile or real models by local path or hub id.

Nothing is ever downloaded: real models load with `local_files_only=True`, and a model that is not on this
machine raises `ModelUnavailableError` with one line saying how to get it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import transformers
from packaging.version import Version
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

from otterbench.dtypes import canonical_dtype, torch_dtype
from otterbench.models.checks import reward_head_problem
from otterbench.models.roles import model_role, role_names
from otterbench.models.sources import TINY, load_config, tokenizer_for, unavailable
from otterbench.models.tiny import build_tiny_model

# transformers 4.56 renamed from_pretrained's `torch_dtype` to `dtype`
_DTYPE_ARG = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
# config fields that fix a model's shape; the fingerprint hashes these and the parameter count
_ARCHITECTURE_FIELDS = (
    "model_type",
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "intermediate_size",
    "tie_word_embeddings",
)


@dataclass
class ModelSet:
    """The models one run needs, by role (models/roles.py); a role the chosen arms do not need reads None."""

    models: dict[str, Any]  # role -> loaded model, "base" always
    tokenizer: Any
    profile: str = TINY
    sources: dict[str, str] = field(default_factory=dict)  # role -> "tiny", hub id or local path
    device: str = "cpu"
    dtype: str = "float32"

    def __getattr__(self, role: str) -> Any:
        models = self.__dict__.get("models")  # absent while unpickling: no recursion
        if models is None or role not in role_names():
            raise AttributeError(f"ModelSet has no attribute {role!r}")
        return models.get(role)


def load_model(
    source: str,
    role: str,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | str = "float32",
    device_map: str | None = None,
    tiny_seed: int = 0,
) -> Any:
    """Load one model in eval mode: `source` is "tiny", a local directory or a hub id already cached."""
    head = model_role(role).head  # unknown roles raise here, listing the known ones
    dtype_ = torch_dtype(dtype)
    if source == TINY:
        return build_tiny_model(role, tiny_seed).to(device=device, dtype=dtype_).eval()
    config = load_config(source, role)
    if head == "reward":
        problem = reward_head_problem(source, config)
        if problem:
            raise ValueError(problem)
    auto_class = AutoModelForSequenceClassification if head == "reward" else AutoModelForCausalLM
    kwargs: dict[str, Any] = {_DTYPE_ARG: dtype_, "local_files_only": True}
    if device_map is not None:
        # accelerate places the layers (models too big for one device); moving it afterwards would undo that
        kwargs["device_map"] = device_map
    try:
        model = auto_class.from_pretrained(str(Path(source).expanduser()), config=config, **kwargs)
    except OSError:
        raise unavailable(role, source, "its config is here but its weights are not") from None
    if device_map is None:
        model = model.to(device)
    return model.eval()


def _vocab_size(model: Any) -> int:
    return model.get_input_embeddings().num_embeddings


def _check_shared_vocab(models: dict[str, Any]) -> None:
    base_vocab = _vocab_size(models["base"])
    for role, model in models.items():
        if role != "base" and _vocab_size(model) != base_vocab:
            task = model_role(role).task_noun
            noun = role.replace("_", " ")
            raise ValueError(
                f"{task} needs the {noun} to share the LLM's token ids: base vocab {base_vocab}, "
                f"{noun} vocab {_vocab_size(model)}"
            )


def _profile_sources(
    profile: str, needs: set[str], table: dict[str, Any], overrides: dict[str, str]
) -> dict[str, str]:
    roles = role_names()
    unknown_roles = sorted(set(needs) - set(roles))
    if unknown_roles:
        raise ValueError(f"needs names unknown roles {unknown_roles}: use roles from {', '.join(roles)}")
    sources = {}
    for role in ("base", *sorted(set(needs) - {"base"}, key=roles.index)):
        source = overrides.get(role, table.get(role))
        if not source:
            raise ValueError(
                f"profile {profile!r} names no {role} model: pass one (--{role.replace('_', '-')} "
                f"ID_OR_PATH) or add `{role} = ...` to the profile"
            )
        sources[role] = source
    return sources


def load_model_set(
    profile: str,
    *,
    needs: set[str],
    overrides: dict[str, str] | None = None,
    profiles: dict[str, dict[str, Any]],
    device: torch.device | str = "cpu",
    dtype: torch.dtype | str | None = None,
    device_map: str | None = None,
    tiny_seed: int = 0,
) -> ModelSet:
    """Load the base model and the roles in `needs`; dtype and device_map default to the profile's."""
    if profile not in profiles:
        raise ValueError(f"unknown profile {profile!r}: known profiles are {', '.join(sorted(profiles))}")
    table = profiles[profile]
    sources = _profile_sources(profile, needs, table, overrides or {})
    dtype_ = torch_dtype(dtype if dtype is not None else table.get("dtype", "float32"))
    device_map = device_map if device_map is not None else table.get("device_map")
    loaded = load_models(sources, device=device, dtype=dtype_, device_map=device_map, tiny_seed=tiny_seed)
    return ModelSet(
        models=loaded,
        tokenizer=tokenizer_for(sources["base"]),
        profile=profile,
        sources=sources,
        device=str(device),
        dtype=canonical_dtype(dtype_),
    )


def load_models(
    sources: dict[str, str],
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | str = "float32",
    device_map: str | None = None,
    tiny_seed: int = 0,
) -> dict[str, Any]:
    """role -> model, for every role of `sources` (role -> source), checked to share the base's vocabulary."""
    models = {
        role: load_model(source, role, device=device, dtype=dtype, device_map=device_map, tiny_seed=tiny_seed)
        for role, source in sources.items()
    }
    _check_shared_vocab(models)
    return models


def model_fingerprint(model: Any) -> str:
    """A short stable hash of the config's architecture fields and the parameter count."""
    config = model.config
    fields = {name: getattr(config, name, None) for name in _ARCHITECTURE_FIELDS}
    fields["class"] = type(model).__name__  # not config.architectures: unset until a model is saved
    fields["num_labels"] = config.num_labels if "SequenceClassification" in type(model).__name__ else None
    fields["parameters"] = sum(p.numel() for p in model.parameters())
    payload = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]
