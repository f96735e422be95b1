"""The guard of the bad-input tests: any model load or arm process fails the test (the check came too late).

One home for the list of loaders, so a renamed loader is patched everywhere at once.
"""

from __future__ import annotations

import pytest

from otterbench.models import loading
from otterbench.run import arm_models, fused_checkpoint, schedules

# a short run: bad input must be refused before any of it starts
SMALL = ["--num-prompts", "2", "--max-new-tokens", "2", "--repeats", "1", "--warmup", "0"]


class LoadedAModel(AssertionError):
    """Raised by the patched loaders: the check came too late."""


def forbid_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every model loader and the arm-process spawner raise LoadedAModel."""

    def refuse(*args, **kwargs):
        raise LoadedAModel("a model was loaded or an arm process started before the input was checked")

    monkeypatch.setattr(loading, "load_model", refuse)
    monkeypatch.setattr(loading, "load_model_set", refuse)
    monkeypatch.setattr(arm_models, "load_models", refuse)
    monkeypatch.setattr(fused_checkpoint, "load_models", refuse)
    monkeypatch.setattr(schedules, "ArmProcess", refuse)
