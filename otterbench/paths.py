"""Where commands write: the default results root and the one writability check every writer runs first."""

from __future__ import annotations

import os
from pathlib import Path

RESULTS_DIR_ENV = "OTTERBENCH_RESULTS_DIR"


def default_results_dir() -> Path:
    """results/ under the working directory, unless OTTERBENCH_RESULTS_DIR says otherwise."""
    return Path(os.environ.get(RESULTS_DIR_ENV, "results"))


def writable_problem(path: Path, option: str, *, is_file: bool = False) -> str | None:
    """Why `path` (a folder, or with `is_file` a file) cannot be written, as one line naming `option`; else None."""
    path = Path(path)
    if is_file and path.is_dir():
        return f"{option}={str(path)!r} is a folder: pass a file path"
    if is_file and path.exists() and not os.access(path, os.W_OK):
        return f"{option}={str(path)!r} is not writable (a read-only file): pass another path"
    probe = path.parent if is_file else path
    while not probe.exists() and probe != probe.parent:  # the nearest existing folder decides
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        return f"{option}={str(path)!r} is not writable ({probe} is not a writable folder): pass another"
    return None
