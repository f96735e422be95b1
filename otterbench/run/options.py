"""RunOptions: every knob of a run, declared once; `otterbench run` and `otterbench sweep` both take them all.

Three kinds of knob, each declared where it belongs and gathered here: the run's own fields (below, each
field's metadata holding its --help text), the grouped settings (`OtterSettings`, `BackendSettings`,
`ProcessSettings` in run/settings.py, whose fields name their options) and the registries' options (every
model role's source, every arm's task knob, every backend's own option). `otterbench/commands/run_options.py`
turns them all into Typer options. None means "the suite's (or profile's) value".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from otterbench.arms.registry import knobs
from otterbench.backends import BACKENDS, BackendSettings, backend_spec
from otterbench.models.roles import model_role, role_names
from otterbench.run.settings import GROUPS, OtterSettings, ProcessSettings, flatten, group_options, route

if TYPE_CHECKING:
    from otterbench.run.config import RunConfig

# suite fields a run may override besides the arms' task knobs (the rest of RunOptions configures the run)
SUITE_FIELDS = ("batch_size", "max_new_tokens", "num_prompts", "repeats", "warmup", "dtype")


def _knob(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


def registered_knobs() -> dict[str, tuple[type, str]]:
    """name -> (type, help) of the options the registries hold: model roles, task knobs, backend options."""
    roles = {role: (str, model_role(role).help) for role in role_names()}
    tasks = {name: (knob.kind, knob.help) for name, knob in knobs().items()}
    backends = {knob.name: (knob.kind, knob.help) for spec in BACKENDS.values() for knob in spec.options}
    return roles | tasks | backends


def _route(cls: type) -> type:
    """Let RunOptions take every option by its flat name: grouped settings and registry options too."""
    generated = cls.__init__

    def __init__(self: Any, **values: Any) -> None:
        groups = route(values, {name: values.pop(name) for name in GROUPS if name in values})
        given = dict(values.pop("knobs", None) or {})
        given |= {name: values.pop(name) for name in list(values) if name in registered_knobs()}
        generated(self, **values, **groups, knobs=given)

    cls.__init__ = __init__  # type: ignore[method-assign]
    return cls


@_route
@dataclass(frozen=True)
class RunOptions:
    """The command line of a run as plain values; `to_config` validates them into a RunConfig.

    Every option reads by its flat name (`options.k`, `options.reward_model`, `options.otter_ratio`) and is
    given by it (`RunOptions(k=5, otter_ratio=0.25)`, `with_values`).
    """

    suite: str = _knob("safety", "suite name (see `otterbench suites`) or a path to a suite TOML")
    profile: str | None = _knob(None, "model profile of the suite: tiny (embedded, offline), paper, ...")
    arms: str | None = _knob(None, "comma-separated arms to run instead of the suite's")
    device: str = _knob("auto", "auto, cpu, cuda or cuda:N")
    dtype: str | None = _knob(None, "float32, bfloat16 or float16 (default: the profile's)")
    batch_size: int | None = _knob(None, "prompts decoded together")
    max_new_tokens: int | None = _knob(None, "N: exactly this many new tokens per prompt, every arm")
    num_prompts: int | None = _knob(None, "use this many prompts of the suite's file")
    repeats: int | None = _knob(None, "measured runs per arm (>= 1)")
    preset: str | None = _knob(
        None, "a run-length preset of the suite: ci = enough repeats for `otterbench check`"
    )
    warmup: int | None = _knob(None, "unmeasured runs per arm first (>= 0)")
    prompts: Path | None = _knob(None, 'your own prompts: JSONL, one {"prompt": "..."} per line')
    out: Path | None = _knob(None, "results root (default: ./results or $OTTERBENCH_RESULTS_DIR)")
    save_outputs: bool = _knob(False, "write outputs.jsonl: every arm's generated ids and text, per prompt")
    insertion: OtterSettings = field(default_factory=OtterSettings)
    backend: BackendSettings = field(default_factory=BackendSettings)
    process: ProcessSettings = field(default_factory=ProcessSettings)
    knobs: Mapping[str, Any] = field(default_factory=dict)  # the registries' options; None: the suite's

    def __post_init__(self) -> None:
        unknown = sorted(set(self.knobs) - set(registered_knobs()))
        if unknown:
            raise TypeError(f"RunOptions got unknown option(s) {unknown}")
        object.__setattr__(self, "knobs", {**dict.fromkeys(registered_knobs()), **self.knobs})

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("knobs")  # absent while unpickling: no recursion
        if values is not None and name in values:
            return values[name]
        if name in group_options():
            return self.flat()[name]
        raise AttributeError(f"RunOptions has no option {name!r}")

    def flat(self) -> dict[str, Any]:
        """Every option by its flat name (the grouped settings and the registries' options included)."""
        own = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name in FIELD_NAMES}
        return own | flatten(self.__dict__) | dict(self.knobs)

    def changed(self) -> dict[str, Any]:
        """The options that differ from their defaults, as JSON-ready values (what a sweep records)."""
        defaults = RunOptions().flat()
        return {
            name: str(value) if isinstance(value, Path) else value
            for name, value in self.flat().items()
            if value != defaults.get(name)
        }

    def with_values(self, values: dict[str, Any]) -> RunOptions:
        """These options with some replaced by flat name (a sweep point's values)."""
        return dataclasses.replace(self, **values)

    def to_config(self, default_out: Path) -> RunConfig:
        """Validate into a RunConfig; every bad value is one RunInputError/SuiteError line."""
        from otterbench.run.config import RunInputError, resolve_run_config

        suite_overrides = {key: getattr(self, key) for key in SUITE_FIELDS} | {
            name: self.knobs[name] for name in knobs()
        }
        arms = [a.strip() for a in self.arms.split(",") if a.strip()] if self.arms is not None else None
        if arms == []:  # "--arms ," or "--arms ''": an empty list would otherwise mean the suite's own arms
            raise RunInputError(
                f"--arms={self.arms!r} names no arm: list one or more, e.g. --arms base,otter-args"
            )
        return resolve_run_config(
            self.suite,
            out_dir=self.out or default_out,
            profile=self.profile,
            suite_overrides=suite_overrides,
            arms=arms,
            prompts=self.prompts,
            preset=self.preset,
            device=self.device,
            overrides={role: self.knobs[role] for role in role_names() if self.knobs[role]},
            insertion=self.insertion,
            backend=self._backend(),
            process=self.process,
            save_outputs=self.save_outputs,
        )

    def _backend(self) -> BackendSettings:
        """The chosen backend with its own options: given, else their defaults (unknown backends: refused later)."""
        if self.backend.name not in BACKENDS:
            return self.backend
        declared = backend_spec(self.backend.name).options
        _refuse_foreign_options(self.backend.name, {knob.name for knob in declared}, self.knobs)
        defaults = {knob.name: knob.default for knob in declared}
        given = {
            knob.name: self.knobs[knob.name] for knob in declared if self.knobs.get(knob.name) is not None
        }
        return dataclasses.replace(self.backend, options={**defaults, **self.backend.options, **given})


def _refuse_foreign_options(name: str, own: set[str], given: Mapping[str, Any]) -> None:
    """Another backend's option given to this one would be ignored in silence: refuse it, naming its owners."""
    from otterbench.run.config import RunInputError

    for spec in BACKENDS.values():
        for knob in spec.options:
            unchanged = given.get(knob.name) in (None, knob.default)  # its default changes nothing
            if knob.name in own or unchanged:
                continue
            owners = sorted(other.name for other in BACKENDS.values() if knob in other.options)
            flag = "--" + knob.name.replace("_", "-")
            raise RunInputError(
                f"{flag} is an option of --engine {' or '.join(owners)}; --engine {name} has no such option "
                f"(drop {flag}, or choose --engine {owners[0]})"
            )


FIELD_NAMES = tuple(f.name for f in dataclasses.fields(RunOptions) if f.name not in (*GROUPS, "knobs"))
