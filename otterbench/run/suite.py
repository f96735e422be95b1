"""Suites: a TOML file naming a task, its arms, a prompts file, the workload and the model profiles.

Every value is checked where it enters; each error is one line naming the field, the bad value and the fix.
The fields are documented in otterbench/suites/README.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import otterbench
from otterbench.arms.registry import ARMS, arm_info, arm_names, knob_defaults, knobs, model_roles, tasks
from otterbench.backends import refusal
from otterbench.dtypes import DTYPE_NAMES as DTYPES
from otterbench.knobs import KnobAttributes, knob_kwargs
from otterbench.models.roles import role_names

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as a package, when it is installed
    try:
        import tomli as tomllib
    except ModuleNotFoundError:
        tomllib = None

SUITES_DIR_ENV = "OTTERBENCH_SUITES_DIR"

# required keys and their types; optional keys carry their defaults in SuiteConfig
_REQUIRED = {"description": str, "task": str, "arms": list, "prompts": str, "max_new_tokens": int}
_REQUIRED |= {"batch_size": int, "seed": int, "profiles": dict}
_OPTIONAL = {"name": str, "num_prompts": int, "repeats": int, "warmup": int, "dtype": str}
_OPTIONAL |= {"default_profile": str, "presets": dict}  # and every arm's task knob (arms/registry.py)
# a preset sets only the run's length: the workload (and so `check`'s matched-workload test) is unchanged
PRESET_KEYS = ("repeats", "warmup")
_TYPE_WORDS = {int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a table"}


class SuiteError(ValueError):
    """A suite file, its values or its prompts file is unusable; the message says which and how to fix it."""


def _optional_keys() -> dict[str, type]:
    return {**_OPTIONAL, **{name: knob.kind for name, knob in knobs().items()}}


@knob_kwargs
@dataclass(frozen=True)
class SuiteConfig(KnobAttributes):
    """One benchmark suite, validated on construction (so `dataclasses.replace` re-checks it too)."""

    name: str
    description: str
    task: str
    arms: tuple[str, ...]
    prompts_path: Path
    max_new_tokens: int
    batch_size: int
    seed: int
    profiles: dict[str, dict[str, str]]
    num_prompts: int | None = None  # None: every prompt in the file
    repeats: int = 3
    warmup: int = 1
    dtype: str = "float32"
    default_profile: str = "tiny"
    presets: dict[str, dict[str, int]] = field(default_factory=dict)  # e.g. ci -> {"repeats": 20}
    source_path: Path | None = field(default=None, compare=False)
    knobs: Mapping[str, Any] = field(default_factory=dict)  # every arm's task knob: the file's, else default

    def __post_init__(self) -> None:
        object.__setattr__(self, "knobs", {**knob_defaults(), **self.knobs})
        _validate(self)

    def to_dict(self) -> dict[str, Any]:
        """The resolved suite as plain JSON-ready values, for saving next to results (knobs flat)."""
        values = asdict(self)
        values.update(values.pop("knobs"))
        values["arms"] = list(self.arms)
        values["prompts_path"] = str(self.prompts_path)
        values["source_path"] = str(self.source_path) if self.source_path else None
        return values

    def profile_dtype(self, profile: str) -> str:
        """The dtype a profile runs in: the profile's own `dtype`, else the suite's."""
        return self.profiles[profile].get("dtype", self.dtype)

    def preset_values(self, preset: str) -> dict[str, int]:
        """The suite values a named preset sets (`otterbench run --preset NAME`); unknown names are refused."""
        if preset not in self.presets:
            known = ", ".join(sorted(self.presets)) or "none"
            raise _fail(self.name, "presets", preset, f"is not a preset of this suite: known are {known}")
        return dict(self.presets[preset])

    def needed_roles(self) -> set[str]:
        """The model roles the suite's arms load: the base, plus the separate models its separate arms use."""
        return model_roles(self.arms)


def _fail(name: str, field_name: str, value: Any, fix: str) -> SuiteError:
    return SuiteError(f"suite {name!r}: {field_name} = {value!r} {fix}")


def _validate(suite: SuiteConfig) -> None:
    name = suite.name
    if suite.task not in tasks():
        raise _fail(name, "task", suite.task, f"is unknown: use one of {', '.join(tasks())}")
    if not suite.arms:
        raise _fail(
            name, "arms", list(suite.arms), f"is empty: name at least one of {', '.join(arm_names())}"
        )
    for arm in suite.arms:
        if arm not in arm_names():
            raise _fail(name, "arms", arm, f"is not a known arm: use names from {', '.join(arm_names())}")
        if arm_info(arm).task not in (None, suite.task):
            raise _fail(
                name,
                "arms",
                arm,
                f"belongs to another task: a {suite.task} suite takes base and "
                f"{suite.task}/otter-{suite.task} arms",
            )
    if len(set(suite.arms)) != len(suite.arms):
        raise _fail(name, "arms", list(suite.arms), "repeats an arm: list each arm once")
    for field_name in ("max_new_tokens", "batch_size", "repeats"):
        if getattr(suite, field_name) < 1:
            raise _fail(name, field_name, getattr(suite, field_name), "is too small: use an integer >= 1")
    declared = knobs()
    for knob_name, value in suite.knobs.items():  # TOML and float options both accept nan and inf
        problem = declared[knob_name].problem(value) if knob_name in declared else "is not a knob of any arm"
        if problem:
            raise _fail(name, knob_name, value, problem)
    if suite.warmup < 0:
        raise _fail(name, "warmup", suite.warmup, "is negative: use 0 (no warm-up) or more")
    if suite.num_prompts is not None and suite.num_prompts < 1:
        raise _fail(name, "num_prompts", suite.num_prompts, "is too small: use >= 1, or leave it out for all")
    if suite.seed < 0:
        raise _fail(name, "seed", suite.seed, "is negative: use an integer >= 0")
    if suite.dtype not in DTYPES:
        raise _fail(name, "dtype", suite.dtype, f"is not supported: use one of {', '.join(DTYPES)}")
    _validate_profiles(suite)
    _validate_presets(suite)


def _validate_presets(suite: SuiteConfig) -> None:
    for preset, table in suite.presets.items():
        if not isinstance(table, dict):
            raise _fail(suite.name, f"presets.{preset}", table, "is not a table: write [presets.NAME]")
        for key, value in table.items():
            if key not in PRESET_KEYS:
                raise _fail(
                    suite.name, f"presets.{preset}.{key}", value, f"is not a preset key: use {PRESET_KEYS}"
                )
            minimum = 1 if key == "repeats" else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise _fail(suite.name, f"presets.{preset}.{key}", value, f"must be an integer >= {minimum}")


def _validate_profiles(suite: SuiteConfig) -> None:
    name = suite.name
    if suite.default_profile not in suite.profiles:
        known = ", ".join(sorted(suite.profiles)) or "none"
        raise _fail(
            name, "default_profile", suite.default_profile, f"is not a profile here: known are {known}"
        )
    for profile, table in suite.profiles.items():
        where = f"profiles.{profile}"
        if not isinstance(table, dict):
            raise _fail(name, where, table, "is not a table: write [profiles.NAME] with role = source lines")
        for key, value in table.items():
            if key not in (*role_names(), "dtype", "device_map"):
                known = ", ".join((*role_names(), "dtype", "device_map"))
                raise _fail(name, f"{where}.{key}", value, f"is not a profile key: use {known}")
            if not isinstance(value, str) or not value:
                raise _fail(name, f"{where}.{key}", value, "must be a non-empty string")
        if table.get("dtype", suite.dtype) not in DTYPES:
            raise _fail(
                name, f"{where}.dtype", table["dtype"], f"is not supported: use one of {', '.join(DTYPES)}"
            )


def _check_type(path: Path, key: str, value: Any, expected: type) -> Any:
    # bool is an int subclass in Python; `k = true` must still be refused
    ok = isinstance(value, expected) and not (isinstance(value, bool) and expected is not bool)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        raise SuiteError(
            f"{path}: {key} = {value!r} has type {type(value).__name__}: write {_TYPE_WORDS[expected]}"
        )
    return value


def suite_from_dict(raw: dict[str, Any], path: Path) -> SuiteConfig:
    """A validated suite from a parsed TOML table; relative paths resolve against `path`'s folder."""
    optional = _optional_keys()
    unknown = sorted(set(raw) - set(_REQUIRED) - set(optional))
    if unknown:
        known = ", ".join([*_REQUIRED, *optional])
        raise SuiteError(f"{path}: unknown key {unknown[0]!r}: suite keys are {known}")
    missing = [key for key in _REQUIRED if key not in raw]
    if missing:
        raise SuiteError(
            f"{path}: required key {missing[0]!r} is missing: add `{missing[0]} = ...` to the file"
        )
    values = {
        key: _check_type(path, key, value, {**_REQUIRED, **optional}[key]) for key, value in raw.items()
    }
    for arm in values["arms"]:
        _check_type(path, "arms", arm, str)
    prompts = Path(values.pop("prompts")).expanduser()
    return SuiteConfig(
        name=values.pop("name", path.stem),
        arms=tuple(values.pop("arms")),
        prompts_path=prompts if prompts.is_absolute() else (path.parent / prompts).resolve(),
        source_path=path.resolve(),
        **values,
    )


def suites_dir() -> Path:
    """The folder of bundled suites: $OTTERBENCH_SUITES_DIR, else the suites shipped inside the package (`otterbench/suites/`)."""
    override = os.environ.get(SUITES_DIR_ENV)
    return Path(override) if override else Path(otterbench.__file__).resolve().parent / "suites"


def _read_toml(path: Path) -> dict[str, Any]:
    if tomllib is None:
        raise SuiteError("reading suites needs Python >= 3.11 (tomllib) or the `tomli` package: install one")
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except OSError as error:
        raise SuiteError(f"{path}: cannot read the suite file ({error.strerror}): check the path") from None
    except tomllib.TOMLDecodeError as error:
        raise SuiteError(f"{path}: not valid TOML ({error}): fix the file") from None


def list_suites() -> list[tuple[str, str]]:
    """(name, one-line description) of every suite in `suites_dir()`, sorted by name."""
    listed = []
    for path in sorted(suites_dir().glob("*.toml")):
        description = str(_read_toml(path).get("description", "")).strip().splitlines()
        listed.append((path.stem, description[0] if description else ""))
    return listed


def load_suite(name_or_path: str) -> SuiteConfig:
    """A validated suite from a bundled suite's name (see `list_suites`) or a path to a TOML file."""
    path = Path(name_or_path).expanduser()
    if path.suffix != ".toml" and not path.is_file():  # a folder named like a suite (an old --out) is not one
        path = suites_dir() / f"{name_or_path}.toml"
        if not path.is_file():
            known = ", ".join(name for name, _ in list_suites()) or "none"
            raise SuiteError(
                f"unknown suite {name_or_path!r}: known suites are {known} (or pass a .toml path)"
            )
    return suite_from_dict(_read_toml(path), path)


def _parse_prompt_line(path: Path, number: int, line: str) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise SuiteError(
            f'{path}:{number}: not valid JSON ({error.msg}): write {{"prompt": "..."}}'
        ) from None
    if not isinstance(record, dict) or not isinstance(record.get("prompt"), str) or not record["prompt"]:
        raise SuiteError(
            f'{path}:{number}: needs a non-empty string field "prompt": write {{"prompt": "..."}}'
        )
    return record["prompt"]


def load_prompts(path: Path, limit: int | None = None) -> list[str]:
    """The prompts of a JSONL file (one {"prompt": "..."} per line, blank lines skipped), the first `limit`."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise SuiteError(f"{path}: cannot read the prompts file ({error}): check the path") from None
    prompts = [_parse_prompt_line(path, number, line) for number, line in enumerate(lines, 1) if line.strip()]
    if not prompts:
        raise SuiteError(f'{path}: has no prompts: write one {{"prompt": "..."}} object per line')
    if limit is not None and not 1 <= limit <= len(prompts):
        raise SuiteError(
            f"{path}: num_prompts = {limit} but the file holds {len(prompts)}: use 1..{len(prompts)}"
        )
    return prompts[:limit]


def backend_arms(suite: SuiteConfig, backend: str) -> SuiteConfig:
    """The suite as a run under `backend` takes it without --arms: its arms the backend runs, plus the arms
    registered for that backend alone whose task is the suite's (or none), in registry order. Under vllm the
    safety suite becomes base, base-plugin (the integration tax), args-vllm (its separate ARGS arm) and
    otter-args; under eager and compiled every suite keeps its own list. Named with --arms, a refused arm
    is refused in preflight instead."""
    own = {
        name
        for name, spec in ARMS.items()
        if spec.backends and backend in spec.backends and spec.task in (None, suite.task)
    }
    chosen = {arm for arm in suite.arms if refusal(backend, arm_info(arm)) is None} | own
    if chosen == set(suite.arms) or not chosen:
        return suite
    return replace(suite, arms=tuple(name for name in ARMS if name in chosen))
