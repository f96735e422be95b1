"""The lock: the README's Quickstart and CI install the same thing, and the lock satisfies pyproject's ranges."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "lock.txt"


def _pip_install(text: str) -> list[str]:
    """The arguments of the first `pip install` command in `text` (up to `&&` or the line's end)."""
    match = re.search(r"pip install ([^\n&]+)", text)
    assert match, "no pip install command"
    return shlex.split(match.group(1))


def _locked() -> dict[str, list[Requirement]]:
    """Every line of the lock by package name (a package may have one line per Python or platform)."""
    pins: dict[str, list[Requirement]] = {}
    for line in LOCK.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            requirement = Requirement(line)
            pins.setdefault(canonicalize_name(requirement.name), []).append(requirement)
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    return [Requirement(text) for text in [*project["dependencies"], *sum(extras.values(), [])]]


def test_the_quickstart_installs_what_ci_installs_from_the_lock() -> None:
    readme = _pip_install((ROOT / "README.md").read_text())
    ci = _pip_install((ROOT / ".ci" / "run").read_text())
    assert readme == ci
    assert ci[:2] == ["-c", "requirements/lock.txt"]


def test_the_lock_pins_the_torch_ci_installs() -> None:
    ci_torch = [arg for arg in _pip_install((ROOT / ".ci" / "run").read_text()) if arg.startswith("torch")]
    assert [str(pin.specifier) for pin in _locked()["torch"]] == [ci_torch[0].removeprefix("torch")]


@pytest.mark.parametrize("requirement", _declared(), ids=str)
def test_the_lock_satisfies_every_declared_range_here(requirement: Requirement) -> None:
    # a dependency added or a range changed in pyproject.toml without refreshing the lock fails here
    if requirement.marker is not None and not requirement.marker.evaluate():
        pytest.skip(f"not needed on this Python/platform: {requirement.marker}")
    here = [
        pin
        for pin in _locked().get(canonicalize_name(requirement.name), [])
        if pin.marker is None or pin.marker.evaluate()
    ]
    assert len(here) == 1, f"{requirement.name} has {len(here)} pins for this Python/platform in {LOCK.name}"
    version = next(iter(here[0].specifier)).version
    assert requirement.specifier.contains(version, prereleases=True), (
        f"{LOCK.name} pins {requirement.name}=={version}, outside pyproject's {requirement.specifier}: "
        "refresh the lock (requirements/README.md)"
    )
