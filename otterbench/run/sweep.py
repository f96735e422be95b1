"""run_sweep: one run per point of a grid of suite settings, resumable, indexed in `index.json`.

Layout: `<out>/<suite>/sweeps/<sweep_id>/index.json` plus the points' run folders under the same folder
(`<sweep_dir>/<suite>/<run_id>/`, written by `otterbench.run.pipeline.run_suite` with the sweep folder as out_dir).
Running the same sweep again resumes it: a point whose recorded run finished with status "complete" is
skipped; a partial, interrupted or missing one is run again. index.json is rewritten atomically after every
change, so a crash or Ctrl-C keeps what finished.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from otterbench.exits import Exit
from otterbench.results.files import ResultsError, load_run, write_json_atomic
from otterbench.run import pipeline as runner
from otterbench.run.config import RunConfig, resolve_run_config
from otterbench.run.pipeline import RunOutcome

INDEX_FILE = "index.json"
SWEEPS_FOLDER = "sweeps"
# field -> type; the run field otter_ratio goes to RunConfig, the others to the suite
VARY_FIELDS: dict[str, type] = {
    "batch_size": int,
    "max_new_tokens": int,
    "k": int,
    "weight": float,
    "alpha": float,
    "filter_p": float,
    "num_prompts": int,
    "repeats": int,
    "warmup": int,
    "otter_ratio": float,
}
RUN_FIELDS = ("otter_ratio",)
_TYPE_WORDS = {int: "an integer", float: "a number"}

# what run_sweep calls for each point: (config, point, on_prelude) -> RunOutcome
PointRunner = Callable[[RunConfig, "SweepPoint", Callable[[dict[str, Any]], None]], RunOutcome]


class SweepInputError(ValueError):
    """A bad --vary value or sweep option; one line naming it and the fix (exit code 2)."""


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


def parse_vary(items: list[str]) -> dict[str, list[Any]]:
    """['batch_size=1,4,16', 'k=5,10'] -> {'batch_size': [1, 4, 16], 'k': [5, 10]}; one-line errors."""
    known = ", ".join(VARY_FIELDS)
    if not items:
        raise SweepInputError(
            f"--vary is missing: give at least one, e.g. --vary batch_size=1,4,16 ({known})"
        )
    grid: dict[str, list[Any]] = {}
    for item in items:
        name, sep, text = (part.strip() for part in item.partition("="))
        if not sep or name not in VARY_FIELDS:
            raise SweepInputError(f"--vary {item!r}: write FIELD=V1,V2,... with FIELD one of {known}")
        if name in grid:
            raise SweepInputError(f"--vary {name} is given twice: list all its values in one --vary")
        kind = VARY_FIELDS[name]
        values = []
        for raw in (value.strip() for value in text.split(",")):
            try:
                values.append(kind(raw))
            except ValueError:
                raise SweepInputError(
                    f"--vary {item!r}: {raw!r} is not {_TYPE_WORDS[kind]}; write e.g. {name}=1,4,16"
                ) from None
        if len(set(values)) != len(values):
            raise SweepInputError(f"--vary {item!r} repeats a value: list each value once")
        grid[name] = values
    return grid


def expand_grid(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The cartesian product of the grid, first field slowest: one dict of values per point."""
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def default_sweep_id(suite_name: str, grid: dict[str, list[Any]], base: dict[str, Any]) -> str:
    """A short hash of suite + grid + base options, so re-running the same command finds its sweep."""
    payload = {"suite": suite_name, "grid": {k: sorted(v) for k, v in grid.items()}, "base": base}
    return hashlib.sha256(json.dumps(_jsonable(payload), sort_keys=True).encode()).hexdigest()[:10]


def sweep_dir_for(out_dir: Path, suite_name: str, sweep_id: str) -> Path:
    """`<out>/<suite>/sweeps/<sweep_id>`."""
    return Path(out_dir) / suite_name / SWEEPS_FOLDER / sweep_id


def point_config(suite_name: str, base: dict[str, Any], values: dict[str, Any], sweep_dir: Path) -> RunConfig:
    """The validated RunConfig of one point: the base options with the point's values on top."""
    suite_values = {k: v for k, v in values.items() if k not in RUN_FIELDS}
    run_values = {k: v for k, v in values.items() if k in RUN_FIELDS}
    kwargs = {key: value for key, value in base.items() if key != "suite_overrides"}
    overrides = {**(base.get("suite_overrides") or {}), **suite_values}
    return resolve_run_config(
        suite_name, out_dir=sweep_dir, suite_overrides=overrides, **{**kwargs, **run_values}
    )


def _check_base(grid: dict[str, list[Any]], base: dict[str, Any]) -> None:
    fixed = {k for k, v in (base.get("suite_overrides") or {}).items() if v is not None}
    fixed |= {k for k in RUN_FIELDS if base.get(k) is not None}
    both = sorted(fixed & set(grid))
    if both:
        option = "--" + both[0].replace("_", "-")
        raise SweepInputError(f"{option} is also varied by --vary {both[0]}=...: drop one of the two")
    if "otter_ratio" in grid and base.get("otter_path"):
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


class _Index:
    """index.json of one sweep, rewritten atomically on every save."""

    def __init__(self, sweep_dir: Path, suite_name: str, grid: dict, base: dict, points: list[SweepPoint]):
        self.path = sweep_dir / INDEX_FILE
        self.head = {
            "sweep_id": sweep_dir.name,
            "suite": suite_name,
            "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "grid": grid,
            "base": _jsonable(base),
        }
        if self.path.is_file():  # a resumed sweep keeps the time it was first started
            earlier = json.loads(self.path.read_text("utf-8")).get("created_utc")
            self.head["created_utc"] = earlier or self.head["created_utc"]
        self.points = points

    def save(self, status: str) -> None:
        updated = datetime.now(timezone.utc).isoformat(timespec="seconds")
        points = [asdict(point) for point in self.points]
        write_json_atomic(
            self.path, {**self.head, "updated_utc": updated, "status": status, "points": points}
        )


def quiet_point_runner(
    config: RunConfig, point: SweepPoint, on_prelude: Callable[[dict], None]
) -> RunOutcome:
    """The default way to run a point: `otterbench.run.pipeline.run_suite` without progress output."""
    return runner.run_suite(config, on_prelude=on_prelude)


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
    sweep_dir: Path, config: RunConfig, point: SweepPoint, index: _Index, run_point: PointRunner
) -> int:
    """Run one point, recording it in the index as it goes; return the run's exit code."""

    def record_run_dir(prelude: dict[str, Any]) -> None:
        point.run_dir = str(Path(prelude["run_dir"]).relative_to(sweep_dir))
        point.attempts.append(point.run_dir)
        index.save("running")

    point.status, point.error, point.failed_arms = "running", None, []
    index.save("running")
    try:
        outcome = run_point(config, point, record_run_dir)
    except KeyboardInterrupt:
        point.status = "interrupted"
        return Exit.INTERRUPTED
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


def run_sweep(
    suite_name: str,
    grid: dict[str, list[Any]],
    sweep_dir: Path,
    base: dict[str, Any] | None = None,
    run_point: PointRunner | None = None,
) -> SweepOutcome:
    """Run every point of `grid` not already complete in `sweep_dir`; `base` holds resolve_run_config kwargs."""
    base = {key: value for key, value in (base or {}).items() if value is not None}
    _check_base(grid, base)
    sweep_dir = Path(sweep_dir)
    previous = _previous_points(sweep_dir, suite_name, base)
    # every point's config is checked before the first one runs: a bad value costs no measurement
    configs = [point_config(suite_name, base, values, sweep_dir) for values in expand_grid(grid)]
    points = _resume_points(sweep_dir, grid, previous)
    index = _Index(sweep_dir, suite_name, grid, base, points)
    ran: list[int] = []
    try:
        for point, config in zip(points, configs, strict=True):
            if point.status == "complete":
                continue
            ran.append(point.index)
            code = _run_point(sweep_dir, config, point, index, run_point or quiet_point_runner)
            index.save("running")
            if code == Exit.INTERRUPTED or point.status == "interrupted":
                raise KeyboardInterrupt
    except KeyboardInterrupt:  # also a Ctrl-C between two points: the index must say where it stopped
        for point in points:
            point.status = "interrupted" if point.status == "running" else point.status
        index.save("interrupted")
        return SweepOutcome(sweep_dir, grid, points, ran, Exit.INTERRUPTED)
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
