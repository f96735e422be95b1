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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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
        if not source or source == "tiny" or not source.startswith(("/", "./", "../", "~")):
            continue  # a hub id: whether it is cached is for transformers to say
        folder = Path(source).expanduser()
        if not folder.is_dir():
            problems.append(
                f"{role} model {source!r} is not available offline (no such directory): check the path, "
                f"pass {_flag(role)} with a directory that holds the model, or use --profile tiny"
            )
        elif not (folder / "config.json").is_file():
            problems.append(
                f"{role} model {source!r} is not a model directory (no config.json there): pass "
                f"{_flag(role)} a folder written by save_pretrained (or `otterbench models save`)"
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
