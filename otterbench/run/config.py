"""RunConfig: one suite plus the command line's overrides, validated where it enters, saved with results."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from otterbench.arms.registry import ARM_NAMES, ENGINES
from otterbench.otter.spec import LAYOUTS
from otterbench.paths import writable_problem
from otterbench.run.suite import MODEL_ROLES, SuiteConfig, load_suite

if TYPE_CHECKING:
    from otterbench.run.session import ArmJob

ISOLATIONS = ("process", "inline")
SCHEDULES = ("auto", "interleaved", "sequential")


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
    otter_path: str | None = None
    otter_ratio: float = 0.125
    layout: str = "fused"  # an engine-ready layout (fused, packed); split (wrappers) stays selectable
    fused_path: str | None = (
        None  # set by the run once the layout's checkpoint is built (fused_checkpoint.py)
    )
    engine: str = "eager"  # eager, or compiled: static KV cache + torch.compile (arms/engine.py)
    isolation: str = "process"
    device_map: str | None = None
    cpu_threads: int = 1
    schedule: str = "auto"
    save_outputs: bool = False  # write outputs.jsonl (every arm's generated ids and text) in the run folder

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
                    "k",
                    "weight",
                    "alpha",
                    "draft_length",
                    "filter_p",
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
            "models": {role: self.source(role) for role in MODEL_ROLES},
            "dtype": self.dtype,
            "device": self.device,
            "prompts": suite["prompts_path"],
            "otter_path": self.otter_path,
            "otter_ratio": self.otter_ratio,
            "layout": self.layout,
            "engine": self.engine,
            "isolation": self.isolation,
            "device_map": self.device_map,
            "cpu_threads": self.cpu_threads,
            "save_outputs": self.save_outputs,
        }

    def source(self, role: str) -> str | None:
        """The id/path (or "tiny") a role loads from: --base etc. first, then the profile."""
        return self.overrides.get(role) or self.suite.profiles[self.profile].get(role)

    def arm_job(self, arm: str, workload: Any, device: str) -> ArmJob:
        """The job one arm's process runs on the resolved `device`."""
        from otterbench.run.session import ArmJob  # imports torch: only once a run starts

        return ArmJob(
            arm=arm,
            workload=workload,
            profile=self.profile,
            profiles=self.suite.profiles,
            overrides=self.overrides,
            device=device,
            dtype=self.dtype,
            repeats=self.repeats,
            warmup=self.warmup,
            otter_path=self.otter_path,
            otter_ratio=self.otter_ratio,
            layout=self.layout,
            fused_path=self.fused_path,
            engine=self.engine,
            device_map=self.device_map,
            cpu_threads=self.cpu_threads,
            extra={"save_outputs": self.save_outputs},
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
        unknown = [arm for arm in arms if arm not in ARM_NAMES]
        if unknown:
            known = ", ".join(ARM_NAMES)
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


def _check_run_fields(config: RunConfig) -> None:
    """The run's own fields (not the suite's), each refused with the option that set it."""
    if config.isolation not in ISOLATIONS:
        raise _fail("--isolation", config.isolation, f"is unknown: choose {' or '.join(ISOLATIONS)}")
    threads = config.cpu_threads
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise _fail("--cpu-threads", threads, "is invalid: use 0 (torch's default) or a positive count")
    if config.schedule not in SCHEDULES:
        raise _fail("--schedule", config.schedule, f"is unknown: choose one of {', '.join(SCHEDULES)}")
    if config.layout not in LAYOUTS:
        raise _fail("--layout", config.layout, f"is unknown: choose {' or '.join(LAYOUTS)}")
    if config.engine not in ENGINES:
        raise _fail("--engine", config.engine, f"is unknown: choose {' or '.join(ENGINES)}")
    if not 0 < config.otter_ratio <= 1:
        raise _fail("--otter-ratio", config.otter_ratio, "is out of range: choose a number in (0, 1]")
    if config.otter_path is not None and not Path(config.otter_path).is_dir():
        raise _fail(
            "--otter", config.otter_path, "is not a folder: pass a directory written by `otterbench distill`"
        )


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
    """Load a suite, apply the command line's values, validate everything once."""
    suite = load_suite(suite_name)
    changes = _suite_changes(suite_overrides, arms, prompts)
    if preset is not None:  # the preset's values first: the command line's own options win
        changes = {**suite.preset_values(preset), **changes}
    suite = dataclasses.replace(suite, **changes)  # SuiteConfig re-validates every field
    profile = profile or suite.default_profile
    if profile not in suite.profiles:
        known = ", ".join(suite.profiles)
        raise _fail("--profile", profile, f"is unknown for suite {suite.name}: choose from {known}")
    config = RunConfig(suite=suite, profile=profile, out_dir=Path(out_dir), **run_fields)
    _check_run_fields(config)
    _check_out_dir(Path(out_dir))
    return config
