"""RunConfig: one suite plus the command line's overrides, validated where it enters, saved with results."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otterbench.arms.registry import arm_info, arm_names, knobs
from otterbench.backends import BackendSettings, backend_names, backend_spec
from otterbench.models.roles import BASE_ROLE, OTTER_ROLE, role_flag, role_names
from otterbench.otter.spec import LAYOUTS
from otterbench.paths import writable_problem
from otterbench.run import settings
from otterbench.run.compile_cache import compile_cache_problem
from otterbench.run.quick_checks import quick_problems, uncached_hub_problems, unused_input_problems
from otterbench.run.settings import (
    GROUPS,
    ISOLATIONS,
    SCHEDULES,
    YARDSTICK_ENGINES,
    OtterSettings,
    ProcessSettings,
    route,
)
from otterbench.run.suite import SuiteConfig, backend_arms, load_suite


class RunInputError(ValueError):
    """A bad value for a run; the message names the option, the value and the fix (exit code 2)."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one run: the suite, the models, the workload knobs and where results go."""

    suite: SuiteConfig
    profile: str
    out_dir: Path
    device: str = "auto"
    overrides: dict[str, str] = field(default_factory=dict)  # role -> id/path from --base etc.
    insertion: OtterSettings = field(default_factory=OtterSettings)
    backend: BackendSettings = field(default_factory=BackendSettings)
    process: ProcessSettings = field(default_factory=ProcessSettings)
    save_outputs: bool = False  # write outputs.jsonl (every arm's generated ids and text) in the run folder
    # the suite's own arms left out because the profile names no model for them (one line each, with the fix)
    skipped_arms: tuple[str, ...] = ()

    @property
    def arms(self) -> tuple[str, ...]:
        return self.suite.arms

    @property
    def repeats(self) -> int:
        return self.suite.repeats

    @property
    def warmup(self) -> int:
        return self.suite.warmup

    @property
    def dtype(self) -> str:
        return self.suite.profile_dtype(self.profile)

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration as saved in results.json (flat suite fields plus the run's own)."""
        suite = self.suite.to_dict()
        return {
            **{
                key: suite[key]
                for key in (
                    *self.suite.knobs,
                    "max_new_tokens",
                    "batch_size",
                    "seed",
                    "repeats",
                    "warmup",
                    "num_prompts",
                    "task",
                    "description",
                )
            },
            "suite": self.suite.name,
            "arms": list(self.arms),
            "profile": self.profile,
            "models": {role: self.source(role) for role in role_names()},
            "dtype": self.dtype,
            "device": self.device,
            "prompts": suite["prompts_path"],
            "otter_path": self.insertion.path,
            "otter_ratio": self.insertion.ratio,
            "layout": self.insertion.layout,
            "yardstick_engine": self.insertion.yardstick_engine,
            "compile_cache": self.process.compile_cache,
            "engine": self.backend.name,
            "isolation": self.process.isolation,
            "device_map": self.process.device_map,
            "cpu_threads": self.process.cpu_threads,
            "save_outputs": self.save_outputs,
            "skipped_arms": list(self.skipped_arms),
        }

    def source(self, role: str) -> str | None:
        """The id/path (or "tiny") a role loads from: --base etc. first, then the profile."""
        return self.overrides.get(role) or self.suite.profiles[self.profile].get(role)

    def sources(self) -> dict[str, str | None]:
        """role -> source of every model role the suite's arms load, sorted by role."""
        return {role: self.source(role) for role in sorted(self.suite.needed_roles())}

    def device_map(self) -> str | None:
        """The device map the arms load with: --device-map, else the profile's (None: one device)."""
        return self.process.device_map or self.suite.profiles[self.profile].get("device_map")


def _arms_with_models(config: RunConfig) -> RunConfig:
    """Without --arms: the suite's arms whose models the profile (or --ROLE) names; an arm without one (e.g.
    args-token under a profile with no token-level reward model) is skipped and said, not refused. The
    base and Otter arms are never skipped: with no base model, preflight refuses the run."""
    missing = {
        arm: role
        for arm in config.arms
        for role in arm_info(arm).needs
        if role not in (BASE_ROLE, OTTER_ROLE) and config.source(role) is None
    }
    if not missing:
        return config
    skipped = tuple(
        f"{arm} not run: profile {config.profile!r} names no {role} (pass {role_flag(role)} ID_OR_PATH "
        "to run it)"
        for arm, role in missing.items()
    )
    kept = tuple(arm for arm in config.arms if arm not in missing)
    return dataclasses.replace(
        config, suite=dataclasses.replace(config.suite, arms=kept), skipped_arms=skipped
    )


def _fail(option: str, value: Any, fix: str) -> RunInputError:
    return RunInputError(f"{option}={value!r} {fix}")


def _check_out_dir(out_dir: Path) -> None:
    problem = writable_problem(out_dir, "--out")
    if problem:
        raise RunInputError(problem)


def _suite_changes(
    suite_overrides: dict[str, Any] | None, arms: list[str] | None, prompts: Path | None
) -> dict[str, Any]:
    """The suite fields the command line replaces (None: keep the suite's)."""
    changes = {key: value for key, value in (suite_overrides or {}).items() if value is not None}
    if arms:
        unknown = [arm for arm in arms if arm not in arm_names()]
        if unknown:
            known = ", ".join(arm_names())
            raise _fail("--arms", ",".join(arms), f"names unknown arm(s) {unknown}: choose from {known}")
        changes["arms"] = tuple(arms)
    if prompts is not None:
        if not Path(prompts).is_file():
            raise _fail(
                "--prompts", str(prompts), 'is not a file: pass a JSONL file of {"prompt": ...} lines'
            )
        changes["prompts_path"] = Path(prompts)
        changes.setdefault("num_prompts", None)  # the suite's count was for its own file
    return changes


def _process_problems(process: ProcessSettings) -> list[str]:
    """The process settings' own values: isolation, threads, schedule (one it cannot honour too), cache."""
    problems = []
    if process.isolation not in ISOLATIONS:
        problems.append(f"--isolation={process.isolation!r} is unknown: choose {' or '.join(ISOLATIONS)}")
    threads = process.cpu_threads
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        problems.append(f"--cpu-threads={threads!r} is invalid: use 0 (torch's default) or a positive count")
    if process.schedule not in SCHEDULES:
        problems.append(f"--schedule={process.schedule!r} is unknown: choose one of {', '.join(SCHEDULES)}")
    elif process.schedule == "interleaved" and process.isolation == "inline":
        problems.append(
            "--schedule='interleaved' cannot be honoured with --isolation inline: inline arms run one after "
            "another in this process, so round-robin repeats need an arm process each; pass --isolation "
            "process, or --schedule sequential (or auto)"
        )
    cache_problem = compile_cache_problem(process.compile_cache)
    return [*problems, *([cache_problem] if cache_problem else [])]


def _insertion_problems(insertion: OtterSettings, engine: str) -> list[str]:
    """The Otter settings' and the engine's own values (each independent of the others)."""
    problems = []
    if insertion.yardstick_engine is not None and insertion.yardstick_engine not in YARDSTICK_ENGINES:
        problems.append(
            f"--yardstick-engine={insertion.yardstick_engine!r} is unknown: "
            f"choose {' or '.join(YARDSTICK_ENGINES)}"
        )
    if insertion.layout is not None and insertion.layout not in LAYOUTS:
        problems.append(f"--layout={insertion.layout!r} is unknown: choose {' or '.join(LAYOUTS)}")
    if engine not in backend_names():
        problems.append(f"--engine={engine!r} is unknown: choose {' or '.join(backend_names())}")
    if not 0 < insertion.ratio <= 1:
        problems.append(f"--otter-ratio={insertion.ratio!r} is out of range: choose a number in (0, 1]")
    if insertion.path is not None and not Path(insertion.path).is_dir():
        problems.append(
            f"--otter={insertion.path!r} is not a folder: pass a directory written by `otterbench distill`"
        )
    return problems


def _check_run_fields(config: RunConfig) -> None:
    """The run's own fields (not the suite's), every bad one refused at once with the option that set it."""
    problems = _process_problems(config.process) + _insertion_problems(config.insertion, config.backend.name)
    if problems:
        raise RunInputError("\n".join(problems))


def _with_defaults(config: RunConfig) -> RunConfig:
    """The Otter settings a run left unset: the layout (the engine's preferred one; one it does not serve is
    refused in preflight, for a run with an Otter arm) and the yardstick's engine."""
    layout = config.insertion.layout or backend_spec(config.backend.name).layouts[0]
    yardstick = config.insertion.yardstick_engine or settings.DEFAULT_YARDSTICK_ENGINE
    insertion = dataclasses.replace(config.insertion, layout=layout, yardstick_engine=yardstick)
    return dataclasses.replace(config, insertion=insertion)


def resolve_run_config(
    suite_name: str,
    *,
    out_dir: Path,
    profile: str | None = None,
    suite_overrides: dict[str, Any] | None = None,
    arms: list[str] | None = None,
    prompts: Path | None = None,
    preset: str | None = None,
    **run_fields: Any,
) -> RunConfig:
    """Load a suite, apply the command line's values, validate everything once.

    `run_fields` are RunConfig's own fields, its settings groups whole, or grouped options by their flat
    names (otter_ratio=0.25, engine="compiled", isolation="inline", ...).
    """
    suite = load_suite(suite_name)
    changes = _suite_changes(suite_overrides, arms, prompts)
    if preset is not None:  # the preset's values first: the command line's own options win
        changes = {**suite.preset_values(preset), **changes}
    suite = dataclasses.replace(suite, **changes)  # SuiteConfig re-validates every field
    profile = profile or suite.default_profile
    if profile not in suite.profiles:
        known = ", ".join(suite.profiles)
        raise _fail("--profile", profile, f"is unknown for suite {suite.name}: choose from {known}")
    groups = route(run_fields, {name: run_fields.pop(name) for name in GROUPS if name in run_fields})
    config = RunConfig(suite=suite, profile=profile, out_dir=Path(out_dir), **groups, **run_fields)
    _check_run_fields(config)
    if not arms:  # the suite's own arms, as the chosen backend runs them, with the models the profile names
        config = dataclasses.replace(config, suite=backend_arms(config.suite, config.backend.name))
        config = _arms_with_models(config)
    config = _with_defaults(config)
    _check_out_dir(Path(out_dir))
    problems = quick_problems(  # fast: nothing heavy is imported yet
        suite, config.device, config.insertion, config.process, config.sources(), suite_overrides or {}
    )
    given_knobs = {name: (suite_overrides or {}).get(name) for name in knobs()}
    problems += unused_input_problems(suite.name, config.arms, given_knobs, config.overrides)
    if problems:  # refused here, the run never reaches preflight: its uncached models are said with the rest
        problems += uncached_hub_problems(config.sources())
    if problems:
        raise RunInputError("\n".join(problems))
    return config
