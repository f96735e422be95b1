"""save_otter / load_otter: the inserted tensors as safetensors plus a small JSON (like a peft adapter).

The JSON records the spec, the base's fingerprint (its architecture and every size, and, when the saver knew
the base's files, a hash of its weights: models/fingerprint.py) and what trained it (`metadata`: a distilled
insertion's task). `load_otter` refuses a base of another architecture or size; `saved_otter_problems`
(a run's preflight, from files alone) also refuses another base of the same shape, whose weights hash
differs. No pickle.
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
from otterbench.otter.spec import BaseDims, OtterSpec, count_inserted_parameters

WEIGHTS_FILE = "otter_inserted.safetensors"
CONFIG_FILE = "otter_config.json"
FORMAT = "otterbench-otter/1"
WEIGHTS_KEY = "weights"  # the base fingerprint's hash of the base's weights files (absent: not recorded)


def base_fingerprint(model: nn.Module, weights: str | None = None) -> dict[str, Any]:
    """What an insertion depends on: the architecture class and every size it was built against (and, when
    given, the hash of the base's weights files, models/fingerprint.py)."""
    return config_fingerprint(type(model).__name__, model.config, weights)


def config_fingerprint(architecture: str, config: Any, weights: str | None = None) -> dict[str, Any]:
    """`base_fingerprint` of a model of class `architecture` built from `config`, without building it; with
    `weights`, the hash of its weights (models/fingerprint.py) too."""
    return {
        "architecture": architecture,
        "model_type": getattr(config, "model_type", None),
        **asdict(BaseDims.from_config(config)),
        **({WEIGHTS_KEY: weights} if weights else {}),
    }


def distilled_task(record: dict[str, Any]) -> str | None:
    """The task a saved insertion was distilled for (its metadata's distill.task); None: undistilled."""
    metadata = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
    distill = metadata.get("distill") if isinstance(metadata.get("distill"), dict) else {}
    task = distill.get("task")
    return task if isinstance(task, str) else None


def save_otter(
    otter: OtterModel,
    directory: str | Path,
    metadata: dict[str, Any] | None = None,
    base_weights: str | None = None,
) -> Path:
    """Write the inserted tensors and their spec + base fingerprint (with `base_weights`, the hash of the
    base's weights files, models/fingerprint.py); returns the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().contiguous().cpu() for name, t in otter.inserted_state_dict().items()}
    save_file(tensors, str(directory / WEIGHTS_FILE))
    record = {
        "format": FORMAT,
        "spec": otter.spec.to_dict(),
        "base": base_fingerprint(otter.base_model, base_weights),
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


def _base_differences(record: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """What differs between the saved base fingerprint and `actual`; the weights' hash only where both have
    one (an insertion saved without its base's files, or a base without safetensors files, is not judged)."""
    saved = record.get("base") if isinstance(record.get("base"), dict) else {}
    return [
        f"{key}: saved {saved.get(key)!r}, given {value!r}"
        for key, value in actual.items()
        if saved.get(key) != value and (key != WEIGHTS_KEY or saved.get(key) is not None)
    ]


def _check_base(record: dict[str, Any], base_model: nn.Module, directory: Path) -> None:
    differences = _base_differences(record, base_fingerprint(base_model))
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


def otter_for_run(
    base_model: nn.Module, directory: str | Path | None, ratio: float, tensor_parallel_size: int = 1
) -> tuple[OtterModel, bool]:
    """The run's Otter over `base_model`: the insertion saved in `directory`, else a fresh one of `ratio`
    (signal over the vocabulary; heads and FFN width splittable over `tensor_parallel_size` ranks); and
    whether it was distilled."""
    if directory:
        distilled = bool(read_otter_config(directory).get("metadata", {}).get("distilled", False))
        return load_otter(base_model, directory), distilled
    spec = OtterSpec.from_ratio(
        base_model.config, ratio, signal="vocab", tensor_parallel_size=tensor_parallel_size
    )
    return insert_otter(base_model, spec), False


def safetensors_numel(path: Path) -> int:
    """Elements the file's header declares; ValueError when the file is shorter than its header says."""
    size = path.stat().st_size
    with path.open("rb") as file:
        prefix = file.read(8)  # little-endian u64: the JSON header's length
        if len(prefix) < 8:
            raise ValueError(f"is truncated ({size} bytes, no header)")
        header_len = int.from_bytes(prefix, "little")
        if 8 + header_len > size:
            raise ValueError(f"is truncated ({size} bytes, header says {header_len} bytes of header alone)")
        try:
            header = json.loads(file.read(header_len))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"has a header that is not JSON ({error})") from None
    tensors = [entry for name, entry in header.items() if name != "__metadata__"]
    expected = 8 + header_len + max((entry["data_offsets"][1] for entry in tensors), default=0)
    if size != expected:
        raise ValueError(f"is truncated or padded ({size} bytes, its header describes {expected})")
    numel = 0
    for entry in tensors:
        count = 1
        for dim in entry["shape"]:
            count *= dim
        numel += count
    return numel


def saved_otter_problems(
    directory: str | Path, architecture: str, config: Any, weights: str | None = None
) -> list[str]:
    """Why the insertion saved in `directory` would not load onto a `architecture` base with `config` (and
    weights hashing to `weights`, when known), or was trained on another base.

    Reads the JSON and the safetensors header only (no tensor data), so a run can refuse a broken folder
    before any model loads.
    """
    directory, fix = Path(directory), "pass a folder written by `otterbench distill` for this base"
    try:
        record = read_otter_config(directory)
        spec = OtterSpec.from_dict({**record["spec"], "init": "zeros"})
    except (ValueError, KeyError, TypeError) as error:
        what = error if isinstance(error, ValueError) else f"its spec does not parse ({error!r})"
        return [f"--otter {directory}: {what}: {fix}"]
    problems = []
    differences = _base_differences(record, config_fingerprint(architecture, config, weights))
    if differences:
        problems.append(
            f"--otter {directory}: {CONFIG_FILE} was saved for another base ({'; '.join(differences)}): {fix}"
        )
    weights = directory / WEIGHTS_FILE
    try:
        numel = safetensors_numel(weights)
    except OSError as error:
        return [*problems, f"--otter {directory}: {WEIGHTS_FILE} cannot be read ({error.strerror}): {fix}"]
    except (ValueError, KeyError, TypeError, IndexError) as error:
        return [*problems, f"--otter {directory}: {WEIGHTS_FILE} {error}: {fix}"]
    if not problems:
        dims = BaseDims.from_config(config)
        try:
            spec.validate_for(dims)
            expected = count_inserted_parameters(dims, spec)
        except ValueError as error:
            return [f"--otter {directory}: its spec does not fit this base ({error}): {fix}"]
        if numel != expected:
            problems.append(
                f"--otter {directory}: {WEIGHTS_FILE} holds {numel} values, its spec on this base needs "
                f"{expected}: {fix}"
            )
    return problems
