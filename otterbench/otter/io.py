"""save_otter / load_otter: the inserted tensors as safetensors plus a small JSON (like a peft adapter).

The JSON records the spec and the base model's fingerprint; loading onto a different base is refused. No pickle.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from otterbench.otter.model import OtterModel, insert_otter
from otterbench.otter.spec import BaseDims, OtterSpec

WEIGHTS_FILE = "otter_inserted.safetensors"
CONFIG_FILE = "otter_config.json"
FORMAT = "otterbench-otter/1"


def base_fingerprint(model: nn.Module) -> dict[str, Any]:
    """What an insertion depends on: the architecture class and every size it was built against."""
    return {
        "architecture": type(model).__name__,
        "model_type": getattr(model.config, "model_type", None),
        **asdict(BaseDims.from_config(model.config)),
    }


def save_otter(otter: OtterModel, directory: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write the inserted tensors and their spec + base fingerprint; returns the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().contiguous().cpu() for name, t in otter.inserted_state_dict().items()}
    save_file(tensors, str(directory / WEIGHTS_FILE))
    record = {
        "format": FORMAT,
        "spec": otter.spec.to_dict(),
        "base": base_fingerprint(otter.base_model),
        "inserted_parameters": otter.num_inserted_parameters(),
        "dtype": str(next(otter.inserted.parameters()).dtype).removeprefix("torch."),
        "metadata": metadata or {},
    }
    (directory / CONFIG_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return directory


def read_otter_config(directory: str | Path) -> dict[str, Any]:
    """The saved JSON record, or one clear ValueError when it is missing or unreadable."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise ValueError(f"no Otter insertion at {directory}: {CONFIG_FILE} is missing")
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"corrupt Otter config {path}: {error}") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ValueError(f"{path} is not an otterbench Otter config (expected format {FORMAT!r})")
    return record


def _check_base(record: dict[str, Any], base_model: nn.Module, directory: Path) -> None:
    saved, actual = record.get("base", {}), base_fingerprint(base_model)
    differences = [
        f"{key}: saved {saved.get(key)!r}, given {value!r}"
        for key, value in actual.items()
        if saved.get(key) != value
    ]
    if differences:
        raise ValueError(
            f"the Otter insertion at {directory} was built for another base model ({'; '.join(differences)})"
        )


def load_otter(base_model: nn.Module, directory: str | Path) -> OtterModel:
    """Rebuild a saved insertion on `base_model`, refusing a mismatched base or damaged files."""
    directory = Path(directory)
    record = read_otter_config(directory)
    _check_base(record, base_model, directory)
    spec = OtterSpec.from_dict({**record["spec"], "init": "zeros"})
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise ValueError(f"no Otter insertion at {directory}: {WEIGHTS_FILE} is missing")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(f"corrupt Otter weights {weights}: {error}") from None
    otter = insert_otter(base_model, spec)
    expected = {name: t.shape for name, t in otter.inserted_state_dict().items()}
    found = {name: t.shape for name, t in tensors.items()}
    if expected != found:
        missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
        shapes = sorted(n for n in set(expected) & set(found) if expected[n] != found[n])
        raise ValueError(
            f"Otter weights {weights} do not fit: missing {missing}, unexpected {extra}, wrong shape {shapes}"
        )
    with torch.no_grad():
        for name, param in otter.inserted.state_dict(keep_vars=True).items():
            param.copy_(tensors[name])
    otter.spec = OtterSpec.from_dict(record["spec"])
    return otter
