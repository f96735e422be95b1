"""Which otterbench produced a result: the package's own version, and the git commit of its own source.

The commit is looked up from the folder this package was imported from, never from the working directory: a
run started inside another git checkout (a user's project, a CI workspace) must not record that checkout's
commit as otterbench's. It is recorded only when the package's files are tracked by the checkout around them;
a package installed into a virtual environment inside some other repository is not, and records None.

Importing this module does not import torch.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from otterbench import __version__

PACKAGE_DIR = Path(__file__).resolve().parent
# variables that would point git at another repository than the one holding the package's folder
_GIT_LOCATION_VARIABLES = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR")


@dataclass(frozen=True)
class SourceState:
    """The package's version and, when its own files are tracked by a git checkout, that commit."""

    version: str
    git_commit: str | None  # HEAD of the checkout that tracks the package's files
    git_dirty: bool | None  # uncommitted or untracked changes under the package's folder


def _git(folder: Path, *args: str) -> str | None:
    """git's stdout for `args` run in `folder`, or None when git is missing or fails."""
    env = {key: value for key, value in os.environ.items() if key not in _GIT_LOCATION_VARIABLES}
    try:
        done = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
            env=env,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout


def source_state(package_dir: Path = PACKAGE_DIR) -> SourceState:
    """The version, commit and dirty flag of the otterbench package in `package_dir` (never raises)."""
    tracked = _git(package_dir, "ls-files", "--", "__init__.py")
    commit = _git(package_dir, "rev-parse", "HEAD") if tracked and tracked.strip() else None
    if not commit:
        return SourceState(__version__, None, None)
    status = _git(package_dir, "status", "--porcelain", "--", ".")
    return SourceState(__version__, commit.strip(), None if status is None else bool(status.strip()))
