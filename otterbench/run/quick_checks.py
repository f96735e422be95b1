"""The checks of a run's input that need neither torch nor transformers: answered in well under a second.

`resolve_run_config` runs them on every config (a run's, each sweep point's), so a bad prompt file, a prompt
count the file cannot give, a contradiction between options, a device that cannot exist or a model folder
that is not there is refused before the heavy libraries are imported. `preflight` (run/preflight.py) then
checks what needs them (model configs, tokenizers, memory) before any weight loads.
Each check takes the parts of a run config it reads (the suite, a settings group, the models' sources), not
the config: run/config.py calls these, so this module must not import it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from otterbench.arms.registry import ARMS, arm_info, model_roles
from otterbench.knobs import Knob
from otterbench.models.roles import role_flag
from otterbench.models.sources import PATH_PREFIXES, TINY, looks_like_path, unavailable
from otterbench.otter.spec import DEFAULT_RATIO
from otterbench.run.settings import OtterSettings, ProcessSettings
from otterbench.run.suite import SuiteConfig, load_prompts

_DEVICE = re.compile(r"auto|cpu|cuda(?::\d+)?")
# device files a CUDA (or ROCm, or WSL) torch needs; with none of them, torch.cuda.is_available() is False
_GPU_DEVICE_FILES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg")
_OTTER_CONFIG = "otter_config.json"  # otterbench.otter.io.CONFIG_FILE (that module imports torch)


Sources = Mapping[
    str, "str | None"
]  # model role -> where it loads from (RunConfig.sources()), sorted by role


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def prompt_count_problems(suite: SuiteConfig, overrides: Mapping[str, Any]) -> list[str]:
    """A prompts file that cannot be read, or --num-prompts / --batch-size beyond the prompts it holds."""
    try:
        available = len(load_prompts(suite.prompts_path))
    except ValueError as error:
        return [str(error)]
    used = min(suite.num_prompts or available, available)
    problems = []
    if suite.num_prompts is not None and suite.num_prompts > available:
        problems.append(
            f"--num-prompts={suite.num_prompts} is more than the {available} prompts of "
            f"{suite.prompts_path}: use 1..{available}, or pass --prompts a longer file"
        )
    if overrides.get("batch_size") is not None and suite.batch_size > used:
        problems.append(
            f"--batch-size={suite.batch_size} is more than the {used} prompts this run decodes, so a batch "
            f"could never hold that many: use 1..{used}"
        )
    return problems


def device_problems(asked: str, process: ProcessSettings, sources: Sources) -> list[str]:
    """A --device that is not one, CUDA asked for where no GPU driver exists, a --device-map with no effect."""
    device = asked.strip().lower()
    if not _DEVICE.fullmatch(device):
        return [f"--device={asked!r} is not a device: use auto, cpu, cuda or cuda:N"]
    if device.startswith("cuda") and not any(os.path.exists(path) for path in _GPU_DEVICE_FILES):
        return [f"--device={asked!r} but this machine has no GPU driver: use --device cpu or auto"]
    return device_map_problems(process, device, sources)


def device_map_problems(process: ProcessSettings, device_type: str, sources: Sources) -> list[str]:
    """--device-map spreads a real model over GPUs: on the CPU, or for the tiny profile, it would do nothing."""
    device_map = process.device_map
    if device_map is None:
        return []
    if device_type == "cpu":
        return [
            f"--device-map={device_map!r} places a model over GPUs, but the run is on the CPU: "
            "drop --device-map, or run on --device cuda"
        ]
    given = [source for source in sources.values() if source]
    if given and all(source == "tiny" for source in given):
        return [
            f"--device-map={device_map!r} has no effect on the tiny profile (built in memory): "
            "drop it, or pass real models"
        ]
    return []


def otter_problems(insertion: OtterSettings) -> list[str]:
    """--otter and --otter-ratio together (a saved insertion has its own size), or an --otter not saved."""
    if insertion.path is None:
        return []
    problems = []
    if insertion.ratio != DEFAULT_RATIO:
        problems.append(
            f"--otter-ratio={insertion.ratio} contradicts --otter {insertion.path}: a saved insertion "
            "has its own size; drop one of the two"
        )
    folder = Path(insertion.path)
    if folder.is_dir() and not (folder / _OTTER_CONFIG).is_file():
        problems.append(
            f"--otter {insertion.path}: no Otter insertion at {folder}: {_OTTER_CONFIG} is missing: pass "
            "a folder written by `otterbench distill`"
        )
    return problems


def model_path_problems(sources: Sources) -> list[str]:
    """A model given as a local path that does not exist or holds no config.json."""
    problems = []
    for role, source in sources.items():
        if not source or source == "tiny" or not source.startswith(PATH_PREFIXES):
            continue  # a hub id: whether it is cached is for transformers to say (uncached_hub_problems)
        folder = Path(source).expanduser()
        if not folder.is_dir():
            problems.append(str(unavailable(role, source, "no such directory")))
        elif not (folder / "config.json").is_file():
            problems.append(
                f"{role} model {source!r} is not a model directory (no config.json there): pass "
                f"{_flag(role)} a folder written by save_pretrained (or `otterbench models save`)"
            )
    return problems


def uncached_hub_problems(sources: Sources) -> list[str]:
    """Hub ids whose config is not in the local Hugging Face cache, one line each (models/sources.py's line, the one
    preflight's transformers lookup gives), asked through huggingface_hub alone. A refused config
    never reaches preflight, so the run's other problems come with these; a config that may run leaves them
    to preflight (a config resolved only to be described need not have its models here)."""
    from huggingface_hub import try_to_load_from_cache

    problems = []
    for role, source in sources.items():
        if not source or source == TINY or looks_like_path(source):
            continue  # a path: model_path_problems judges it
        try:
            if isinstance(try_to_load_from_cache(source, "config.json"), str):
                continue
        except ValueError:  # not even a valid repo id (huggingface_hub's HFValidationError)
            pass
        problems.append(
            str(unavailable(role, source, "not in the local Hugging Face cache or not a model directory"))
        )
    return problems


def _owners(knob: str | None = None, role: str | None = None) -> str:
    """The registered arms that read `knob` or load `role`, named for a message."""
    found = [
        name
        for name, spec in ARMS.items()
        if knob in (k.name for k in spec.knobs) or (role is not None and role in spec.needs)
    ]
    return ", ".join(found) or "no registered arm"


def unused_input_problems(
    suite: str, arms: Sequence[str], knob_values: Mapping[str, Any], roles: Iterable[str]
) -> list[str]:
    """A task knob (`knob_values`: name -> value given, None: not given) or a model role given on the command
    line that none of the run's `arms` reads: it would be ignored in silence. What an arm reads is its spec's
    `knobs` and `needs` (arms/registry.py)."""
    read: dict[str, Knob] = {knob.name: knob for arm in arms for knob in arm_info(arm).knobs}
    loaded = model_roles(arms)
    listed = ", ".join(arms)
    problems = []
    for name, value in knob_values.items():
        if value is None or name in read:
            continue
        flag = _flag(name)
        problems.append(
            f"{flag}={value!r} is read by the arm(s) {_owners(knob=name)}, "
            f"none of which this run runs (suite {suite}: {listed}; they read "
            f"{', '.join(_flag(k) for k in read) or 'no task knob'}): drop {flag} or pass --arms that read it"
        )
    for role in roles:
        if role in loaded:
            continue
        flag = role_flag(role)
        problems.append(
            f"{flag} is loaded by the arm(s) {_owners(role=role)}, none of which this run "
            f"runs (suite {suite}: {listed}; they load {', '.join(role_flag(r) for r in sorted(loaded))}): "
            f"drop {flag} or pass --arms that load it"
        )
    return problems


def quick_problems(
    suite: SuiteConfig,
    device: str,
    insertion: OtterSettings,
    process: ProcessSettings,
    sources: Sources,
    overrides: Mapping[str, Any],
) -> list[str]:
    """Every problem found without torch (`device`: as asked; `overrides`: the suite fields the command line
    set)."""
    return [
        *prompt_count_problems(suite, overrides),
        *device_problems(device, process, sources),
        *otter_problems(insertion),
        *model_path_problems(sources),
    ]
