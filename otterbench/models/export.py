"""Write an embedded profile's models as ordinary Hugging Face checkpoints, one folder per role.

Each folder holds the model (`save_pretrained`: config + safetensors) and the profile's tokenizer, so it loads
with transformers' Auto classes and with `otterbench run --base DIR/base --reward-model DIR/reward_model ...`.
"""

from __future__ import annotations

from pathlib import Path

from otterbench.models.roles import role_names
from otterbench.models.tiny import build_tiny_model
from otterbench.models.tokenizer import load_tokenizer

EXPORTABLE_PROFILES = ("tiny",)


def save_profile_models(profile: str, directory: str | Path, seed: int = 0) -> dict[str, Path]:
    """Save every role of `profile` under `directory/<role>`; returns role -> folder."""
    if profile not in EXPORTABLE_PROFILES:
        raise ValueError(
            f"--profile={profile!r} cannot be saved: only embedded profiles ({', '.join(EXPORTABLE_PROFILES)}) "
            "are built here; real models are already checkpoints"
        )
    directory = Path(directory)
    tokenizer = load_tokenizer()
    written = {}
    for role in role_names():
        folder = directory / role
        build_tiny_model(role, seed).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        written[role] = folder
    return written
