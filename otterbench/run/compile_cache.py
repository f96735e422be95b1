"""torch.compile's on-disk caches for a run's arm processes: one folder shared by the run, or one per arm.

Arms run in separate processes, and several compile the same graph: base, args-faithful and args-optimized
all compile the base's decode step at the same shapes, and the yardstick (run/yardstick.py) compiles it once
more in the Otter arm's process. Inductor's FX graph cache and AOTAutograd's cache (torch's own, on by
default) keep each compiled graph on disk under `TORCHINDUCTOR_CACHE_DIR`, keyed by the graph, its inputs'
shapes, strides and dtypes, torch's version and the compile configuration: a hit loads the kernels a miss
would have built, so numerics cannot change (a run's tokens are the same either way:
docs/measurements/cpu-compile-cache.md). Dynamo still traces in every process; only the compile is skipped.

- `run` (default): one fresh folder for the whole run, removed at its end: the first arm compiling a graph
  pays for it, later arms load it. Arms start one after another, so a later arm always sees the earlier ones'.
- `arm`: a fresh folder per arm: every arm compiles cold (the figure to set the shared cache against).
Either way the run uses none of the machine's other compiles (torch's default folder is per user, shared by
every process that ever ran), so an arm's `compile_s` depends on this run alone.
- a folder path (any other value with a "/" in it, e.g. `./compile-cache`): shared by the run's arms as with
  `run`, created if missing and kept, so later runs (a CI job's cached folder, the GPU check's runs of each
  layout) load what earlier ones compiled. `compile_s` then depends on those runs too: results.json's
  `config.compile_cache` names the folder.
Inline runs (debugging) keep their process's own caches.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from otterbench.paths import writable_problem
from otterbench.run.settings import COMPILE_CACHES

CACHE_DIR_VARIABLE = "TORCHINDUCTOR_CACHE_DIR"  # where inductor's and AOTAutograd's caches live


def compile_cache_problem(choice: str) -> str | None:
    """Why `--compile-cache` cannot take `choice`, as one line; None for run, arm or a writable folder path."""
    if choice in COMPILE_CACHES:
        return None
    if "/" not in choice and os.sep not in choice:
        choices = " or ".join(COMPILE_CACHES)
        return f"--compile-cache={choice!r} is unknown: choose {choices}, or a folder path with a / in it"
    return writable_problem(Path(choice).expanduser(), "--compile-cache")


@contextmanager
def compile_cache_root(choice: str = "run") -> Iterator[Path]:
    """The folder of the run's compile caches: `choice`'s own folder (created, kept), else a fresh one that is
    removed when the run ends."""
    if choice not in COMPILE_CACHES:
        folder = Path(choice).expanduser().resolve()
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix="otterbench-compile-") as root:
        yield Path(root)


def with_compile_caches(resolved: Any, root: Path) -> Any:
    """`resolved` with each job's compile cache folder: `root` for every arm (`run` or a kept folder), or one
    each under it (`arm`)."""
    shared = resolved.config.process.compile_cache != "arm"
    jobs = tuple(
        dataclasses.replace(job, compile_cache_dir=str(root if shared else root / f"{index}-{job.arm}"))
        for index, job in enumerate(resolved.jobs)
    )
    return dataclasses.replace(resolved, jobs=jobs)


def use_compile_cache(directory: str | None) -> None:
    """In an arm's process, before anything compiles: torch's compile caches read and write `directory`."""
    if directory:
        os.environ[CACHE_DIR_VARIABLE] = directory
