"""Where commands write: the default results root and the one writability check every writer runs first."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

RESULTS_DIR_ENV = "OTTERBENCH_RESULTS_DIR"


def default_results_dir() -> Path:
    """results/ under the working directory, unless OTTERBENCH_RESULTS_DIR says otherwise."""
    return Path(os.environ.get(RESULTS_DIR_ENV, "results"))


def _can_create_in(folder: Path) -> bool:
    """Whether a file can really be created in `folder`: root passes every mode bit, /proc and read-only
    mounts refuse only when something is written, so ask the file system, not the permission bits."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".otterbench-probe-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True


def writable_problem(path: Path, option: str, *, is_file: bool = False) -> str | None:
    """Why `path` (a folder, or with `is_file` a file) cannot be written, as one line naming `option`; else None."""
    path = Path(path)
    if is_file and path.is_dir():
        return f"{option}={str(path)!r} is a folder: pass a file path"
    if not is_file and path.exists() and not path.is_dir():
        return f"{option}={str(path)!r} is a file: pass a folder path"
    if is_file and path.exists() and not os.access(path, os.W_OK):
        return f"{option}={str(path)!r} is not writable (a read-only file): pass another path"
    probe = path.parent if is_file else path
    while not probe.exists() and probe != probe.parent:  # the nearest existing folder decides
        probe = probe.parent
    if not probe.is_dir() or not _can_create_in(probe):
        return f"{option}={str(path)!r} is not writable ({probe} is not a writable folder): pass another"
    return None
