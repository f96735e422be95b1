"""Where a model comes from, offline: the tiny profile's name, real configs and tokenizers without weights.

Nothing is ever downloaded: a model that is not on this machine raises `ModelUnavailableError` with one line
saying how to get it. The loader (models/loading.py) and the checks without weights (models/checks.py) read
sources through here. Importing this module does not import transformers (the run's quick checks, before
anything heavy loads, name a missing model with the same line).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TINY = "tiny"  # the embedded profile's source name (models/tiny.py builds its models from configs)
PATH_PREFIXES = ("/", "./", "../", "~")  # a source starting so names a local folder, never a hub id


class ModelUnavailableError(ValueError):
    """A model named by id or path is not on this machine (otterbench never downloads)."""


def unavailable(role: str, source: str, why: str) -> ModelUnavailableError:
    """The one-line error for a model that is not on this machine, with how to get it."""
    flag = f"--{role.replace('_', '-')}"
    if looks_like_path(source):
        fix = f"check the path, pass {flag} with a directory that holds the model, or use --profile tiny"
    else:
        fix = (
            f"download it with `hf download {source}` on a machine with network, pass {flag} /local/path, "
            "or use --profile tiny"
        )
    return ModelUnavailableError(f"{role} model {source!r} is not available offline ({why}): {fix}")


def looks_like_path(source: str) -> bool:
    """Whether `source` names a local folder rather than a hub id."""
    return source.startswith(PATH_PREFIXES) or Path(source).expanduser().exists()


def local_folder(source: str) -> Path | None:
    """The folder on this machine holding `source`'s files: the directory it names, or a hub id's snapshot
    in the local Hugging Face cache; None when neither is here (nothing is downloaded)."""
    if looks_like_path(source):
        folder = Path(source).expanduser()
        return folder if folder.is_dir() else None
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(source, local_files_only=True))
    except Exception:  # noqa: BLE001 — not cached, not a repo id: huggingface_hub raises several kinds
        return None


def load_config(source: str, role: str) -> Any:
    """A real model's config, offline, without its weights; a missing model raises ModelUnavailableError."""
    from transformers import AutoConfig

    if looks_like_path(source) and not Path(source).expanduser().is_dir():
        raise unavailable(role, source, "no such directory")
    try:
        return AutoConfig.from_pretrained(str(Path(source).expanduser()), local_files_only=True)
    except (OSError, ValueError):
        # transformers' own message talks about connecting to the hub; offline, the cause is simpler
        raise unavailable(
            role, source, "not in the local Hugging Face cache or not a model directory"
        ) from None


def load_real_tokenizer(source: str) -> Any:
    """The base model's own tokenizer, offline, padding on the left, pad = eos when it has no pad token."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(Path(source).expanduser()), local_files_only=True)
    except (OSError, ValueError):
        raise unavailable("base", source, "its tokenizer files are missing") from None
    tokenizer.padding_side = "left"  # a batch of prompts must end where generation continues
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def tokenizer_for(source: str) -> Any:
    """The tokenizer of a base model's source: the shipped one for the tiny profile, else the model's own."""
    from otterbench.models.tokenizer import load_tokenizer

    return load_tokenizer() if source == TINY else load_real_tokenizer(source)
