"""run_sweep: one run per point of a grid of suite settings, resumable, indexed in `index.json`.

Layout: `<out>/<suite>/sweeps/<sweep_id>/index.json` plus the points' run folders under the same folder
(`<sweep_dir>/<suite>/<run_id>/`, written by `otterbench.run.pipeline.run_suite` with the sweep folder as out_dir).
Running the same sweep again resumes it: a point whose recorded run finished with status "complete" is
skipped; a partial, interrupted or missing one is run again. index.json is rewritten atomically after every
change, under a lock (`index.lock`) and merged with what is on disk, so a crash or Ctrl-C keeps what finished
and two sweeps writing into one folder never drop each other's points.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from otterbench.exits import Exit
from otterbench.results.files import ResultsError, load_run, write_json_atomic
from otterbench.run import pipeline as runner
from otterbench.run.config import RunConfig
from otterbench.run.events import EventSink, PointStarted, RunEvent, RunStarted, ignore
from otterbench.run.grid import SweepInputError, expand_grid, parse_vary  # noqa: F401 (re-exported)
from otterbench.run.interrupts import InterruptGuard
from otterbench.run.locks import file_lock
from otterbench.run.options import RunOptions
from otterbench.run.pipeline import RunOutcome
from otterbench.run.preflight import preflight

INDEX_FILE = "index.json"
BUSY_POLL_S = 1.0  # how often a sweep looks again at a point another sweep is running
LOCK_FILE = "index.lock"
SWEEPS_FOLDER = "sweeps"
_NOT_BASE = ("suite", "out")  # where a sweep lives, not what its points measure

# what run_sweep calls for each point: (config, point, the sweep's event sink) -> RunOutcome
PointRunner = Callable[[RunConfig, "SweepPoint", EventSink], RunOutcome]


@dataclass
class SweepPoint:
    """One point of the grid: its values, the run that measured it and how that run ended."""

    index: int
    values: dict[str, Any]
    status: str = "pending"  # pending | running | complete | partial | interrupted | error
    run_dir: str | None = None  # relative to the sweep folder
    failed_arms: list[str] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)  # every run folder started for this point
    error: str | None = None

    @property
    def label(self) -> str:
        """`batch_size=4 k=10`."""
        return " ".join(f"{name}={value}" for name, value in self.values.items())


@dataclass
class SweepOutcome:
    """Where the sweep lives, every point, which points ran this time and the exit code it earns."""

    sweep_dir: Path
    grid: dict[str, list[Any]]
    points: list[SweepPoint]
    ran: list[int]  # indices of the points run by this call (the rest were already complete)
    exit_code: int

    def run_dirs(self, status: str = "complete") -> list[Path]:
        """Absolute run folders of the points with `status`, in grid order."""
        return [self.sweep_dir / p.run_dir for p in self.points if p.status == status and p.run_dir]


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def base_options(options: RunOptions) -> dict[str, Any]:
    """The options every point shares, as recorded in index.json (only those that differ from defaults)."""
    return {key: value for key, value in options.changed().items() if key not in _NOT_BASE}


def default_sweep_id(suite_name: str, grid: dict[str, list[Any]], base: dict[str, Any]) -> str:
    """A short hash of suite + grid + base options, so re-running the same command finds its sweep."""
    payload = {"suite": suite_name, "grid": {k: sorted(v) for k, v in grid.items()}, "base": base}
    return hashlib.sha256(json.dumps(_jsonable(payload), sort_keys=True).encode()).hexdigest()[:10]


def sweep_dir_for(out_dir: Path, suite_name: str, sweep_id: str) -> Path:
    """`<out>/<suite>/sweeps/<sweep_id>`."""
    return Path(out_dir) / suite_name / SWEEPS_FOLDER / sweep_id


def point_config(options: RunOptions, values: dict[str, Any], sweep_dir: Path) -> RunConfig:
    """The validated RunConfig of one point: the sweep's options with the point's values on top."""
    return options.with_values({**values, "out": sweep_dir}).to_config(sweep_dir)


def _check_base(grid: dict[str, list[Any]], options: RunOptions) -> None:
    both = sorted(set(base_options(options)) & set(grid))
    if both:
        option = "--" + both[0].replace("_", "-")
        raise SweepInputError(f"{option} is also varied by --vary {both[0]}=...: drop one of the two")
    if "otter_ratio" in grid and options.otter:
        raise SweepInputError(
            "--vary otter_ratio has no effect with --otter (a saved insertion has its own size): drop one"
        )


def _run_status(sweep_dir: Path, run_dir: str | None) -> tuple[str, list[str]]:
    """(status of the recorded run, its failed arms); "missing" when there is no readable results.json."""
    if run_dir is None:
        return "missing", []
    try:
        results = load_run(sweep_dir / run_dir)
    except ResultsError:
        return "missing", []
    return results["status"], [a["name"] for a in results["arms"] if a["status"] not in ("ok", "not_run")]


def _previous_points(sweep_dir: Path, suite_name: str, base: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The points of an earlier index.json in `sweep_dir`, keyed by their values; refuse another base."""
    path = sweep_dir / INDEX_FILE
    if not path.is_file():
        return {}
    try:
        index = json.loads(path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise SweepInputError(
            f"{path} is not valid JSON: delete it (the run folders stay) or pass another --sweep-id"
        ) from None
    if index.get("suite") != suite_name or index.get("base") != _jsonable(base):
        raise SweepInputError(
            f"--sweep-id {sweep_dir.name!r} holds a sweep of other base options ({path}): "
            "pass another --sweep-id, or drop it to get one derived from the options"
        )
    return {json.dumps(p["values"], sort_keys=True): p for p in index["points"]}


def _key(values: dict[str, Any]) -> str:
    return json.dumps(values, sort_keys=True)


class _Index:
    """index.json of one sweep, shared with any other sweep of the same id running at once.

    Every read-modify-write happens under the sweep's lock. A point is claimed under the lock before it runs
    (its entry names the claiming process), so two sweeps never run one point; a point another live sweep
    runs is waited for and adopted. Entries of points this sweep claimed win over the disk's; the others'
    stay; every run folder ever started for a point stays in its `attempts`, so no finished run is orphaned.
    """

    def __init__(self, sweep_dir: Path, suite_name: str, grid: dict, base: dict, points: list[SweepPoint]):
        self.path = sweep_dir / INDEX_FILE
        self.head = {"sweep_id": sweep_dir.name, "suite": suite_name, "grid": grid, "base": _jsonable(base)}
        self.points = points
        self.mine: set[int] = set()  # points this sweep has claimed: its entries win over the disk's
        self.owner = {"host": socket.gethostname(), "pid": os.getpid(), "token": secrets.token_hex(4)}

    def _on_disk(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            return {}

    def _entry(self, point: SweepPoint, theirs: dict[str, Any] | None) -> dict[str, Any]:
        if point.index not in self.mine and theirs is not None:
            return theirs
        entry = asdict(point)
        before = (theirs or {}).get("attempts", [])
        entry["attempts"] = before + [run for run in point.attempts if run not in before]
        entry["owner"] = self.owner if point.status == "running" else None
        return entry

    def _write(self, disk: dict[str, Any], status: str) -> None:
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        theirs = {_key(p["values"]): p for p in disk.get("points", [])}
        points = [self._entry(point, theirs.pop(_key(point.values), None)) for point in self.points]
        created = disk.get("created_utc", now)  # a resumed sweep keeps the time it was first started
        document = {**self.head, "created_utc": created, "updated_utc": now, "status": status}
        write_json_atomic(self.path, {**document, "points": points + list(theirs.values())})

    def save(self, status: str) -> None:
        """Merge with the disk and rewrite, under the lock."""
        with file_lock(self.path.parent / LOCK_FILE):
            self._write(self._on_disk(), status)

    def claim(self, point: SweepPoint) -> str:
        """ "run" (claimed for this sweep), "done" (completed elsewhere: adopted) or "busy" (another live
        sweep runs it now)."""
        with file_lock(self.path.parent / LOCK_FILE):
            disk = self._on_disk()
            entry = {_key(p["values"]): p for p in disk.get("points", [])}.get(_key(point.values), {})
            status, failed = _run_status(self.path.parent, entry.get("run_dir"))
            if status == "complete":
                point.status, point.run_dir, point.failed_arms = status, entry["run_dir"], failed
                point.attempts = list(entry.get("attempts", point.attempts))
                return "done"
            if entry.get("status") == "running" and self._runs_elsewhere(entry.get("owner")):
                return "busy"
            self.mine.add(point.index)
            point.attempts = list(entry.get("attempts", point.attempts))
            point.status, point.error, point.failed_arms = "running", None, []
            self._write(disk, "running")
            return "run"

    def _runs_elsewhere(self, owner: dict[str, Any] | None) -> bool:
        """Whether `owner` is another sweep still alive on this machine (one on another host: not known)."""
        if not owner or owner.get("host") != self.owner["host"] or owner.get("pid") == self.owner["pid"]:
            return False  # nobody, another machine (cannot tell), or this process (one sweep at a time)
        try:
            os.kill(int(owner["pid"]), 0)
        except (ProcessLookupError, ValueError, TypeError):
            return False
        except PermissionError:  # alive, another user's
            return True
        return True


def quiet_point_runner(config: RunConfig, point: SweepPoint, on_event: EventSink) -> RunOutcome:
    """The default way to run a point: `otterbench.run.pipeline.run_suite`, its events to the sweep's sink."""
    return runner.run_suite(config, on_event)


def _resume_points(sweep_dir: Path, grid: dict, previous: dict[str, dict]) -> list[SweepPoint]:
    points = []
    for i, values in enumerate(expand_grid(grid)):
        before = previous.get(json.dumps(values, sort_keys=True), {})
        point = SweepPoint(
            i, values, run_dir=before.get("run_dir"), attempts=list(before.get("attempts", []))
        )
        status, failed = _run_status(sweep_dir, point.run_dir)
        point.status = status if status != "missing" else "pending"
        point.failed_arms = failed if status == "complete" else []
        points.append(point)
    return points


def _run_point(
    config: RunConfig, point: SweepPoint, index: _Index, run_point: PointRunner, emit: EventSink
) -> int:
    """Run one point, recording it in the index as it goes; return the run's exit code."""
    sweep_dir = index.path.parent

    def record_run_dir(event: RunEvent) -> None:
        if isinstance(event, RunStarted):
            point.run_dir = str(Path(event.run_dir).relative_to(sweep_dir))
            point.attempts.append(point.run_dir)
            index.save("running")
        emit(event)

    try:
        emit(PointStarted(sweep_dir, point.index, len(index.points), point.label))
        outcome = run_point(config, point, record_run_dir)
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM before the point's run folder existed
        point.status = "interrupted"
        return getattr(stop, "exit_code", Exit.INTERRUPTED)
    except Exception as error:  # a point that cannot start is recorded; input errors still stop the sweep
        point.status, point.error = "error", f"{type(error).__name__}: {error}".splitlines()[0]
        index.save("running")
        if isinstance(error, ValueError):
            raise
        return Exit.FAILED
    point.status, point.failed_arms = _run_status(sweep_dir, point.run_dir)
    if point.status == "missing":
        point.status, point.error = "error", "the point's run wrote no readable results.json"
        return Exit.FAILED
    return outcome.exit_code


def _run_points(
    configs: list[RunConfig], index: _Index, run_point: PointRunner, emit: EventSink
) -> tuple[list[int], int | None]:
    """Run the points not complete; (indices run, the interrupt's exit code if one stopped the sweep).

    A point another live sweep is running is left for later, then adopted once it completes (or run here
    if that sweep stopped without completing it).
    """
    ran: list[int] = []
    pending = [(p, c) for p, c in zip(index.points, configs, strict=True) if p.status != "complete"]
    while pending:
        busy = []
        for point, config in pending:
            claim = index.claim(point)
            if claim == "busy":
                busy.append((point, config))
            if claim != "run":
                continue
            ran.append(point.index)
            code = _run_point(config, point, index, run_point, emit)
            index.save("running")
            if code in (Exit.INTERRUPTED, Exit.TERMINATED):
                return ran, code
        if busy:
            time.sleep(BUSY_POLL_S)
        pending = busy
    return ran, None


def run_sweep(
    options: RunOptions,
    grid: dict[str, list[Any]],
    sweep_dir: Path,
    run_point: PointRunner | None = None,
    on_event: EventSink | None = None,
) -> SweepOutcome:
    """Run every point of `grid` (RunOptions fields -> values) not already complete in `sweep_dir`.

    `on_event` receives a PointStarted per point run, then that run's events; `run_point` replaces how a
    point is run (default: `run_suite`).
    """
    _check_base(grid, options)
    sweep_dir, base = Path(sweep_dir), base_options(options)
    suite_name = options.to_config(sweep_dir).suite.name
    previous = _previous_points(sweep_dir, suite_name, base)
    # every point's config is checked before the first one runs: a bad value costs no measurement
    configs = [point_config(options, values, sweep_dir) for values in expand_grid(grid)]
    preflight(configs)  # every point's models, prompts and lengths too, all problems at once
    points = _resume_points(sweep_dir, grid, previous)
    index = _Index(sweep_dir, suite_name, grid, base, points)
    try:
        with InterruptGuard().installed():  # SIGTERM between two points too: the index says where it stopped
            ran, stopped = _run_points(configs, index, run_point or quiet_point_runner, on_event or ignore)
    except KeyboardInterrupt as stop:
        ran = [p.index for p in points if p.index in index.mine]
        stopped = getattr(stop, "exit_code", Exit.INTERRUPTED)
    if stopped is not None:
        for point in points:
            point.status = "interrupted" if point.status == "running" else point.status
        index.save("interrupted")
        return SweepOutcome(sweep_dir, grid, points, ran, stopped)
    failed = any(p.status != "complete" or p.failed_arms for p in points)
    index.save("failed" if failed else "complete")
    return SweepOutcome(sweep_dir, grid, points, ran, Exit.FAILED if failed else Exit.OK)


def report_groups(outcome: SweepOutcome) -> list[tuple[str, list[Path]]]:
    """Complete points grouped for cost-growth curves: one group per value of the fields other than the x-axis."""
    from otterbench.results.report.plots import SWEEP_FIELDS

    x_field = next((name for name in outcome.grid if name in SWEEP_FIELDS), next(iter(outcome.grid)))
    groups: dict[str, list[Path]] = {}
    for point in outcome.points:
        if point.status != "complete" or not point.run_dir:
            continue
        rest = " ".join(f"{k}={v}" for k, v in point.values.items() if k != x_field)
        groups.setdefault(rest, []).append(outcome.sweep_dir / point.run_dir)
    return [(label, dirs) for label, dirs in groups.items() if len(dirs) > 1]
