"""RunOptions: every knob of a run, declared once; `otterbench run` and `otterbench sweep` both take them all.

Each field's metadata holds its --help text; `otterbench/commands/run_options.py` turns the fields into
Typer options. None means "the suite's (or profile's) value".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from otterbench.run.suite import MODEL_ROLES

if TYPE_CHECKING:
    from otterbench.run.config import RunConfig

# suite fields a run may override (the rest of RunOptions configures the run itself)
SUITE_KNOBS = ("batch_size", "max_new_tokens", "k", "weight", "alpha", "num_prompts", "repeats", "warmup")
SUITE_KNOBS += ("dtype", "draft_length", "filter_p")


def _knob(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class RunOptions:
    """The command line of a run as plain values; `to_config` validates them into a RunConfig."""

    suite: str = _knob("safety", "suite name (see `otterbench suites`) or a path to a suite TOML")
    profile: str | None = _knob(None, "model profile of the suite: tiny (embedded, offline), paper, ...")
    base: str | None = _knob(None, "base LLM: hub id (cached locally) or local path; overrides the profile")
    reward_model: str | None = _knob(None, "ARGS reward model: hub id or local path")
    token_reward_model: str | None = _knob(
        None, "args-token's token-level reward model (a causal LM): hub id or local path"
    )
    expert: str | None = _knob(None, "DExperts expert: hub id or local path")
    anti_expert: str | None = _knob(None, "DExperts anti-expert: hub id or local path")
    draft: str | None = _knob(
        None, "speculative decoding's draft model: hub id or local path (e.g. OUT/draft from distill)"
    )
    otter: Path | None = _knob(None, "saved insertion (from `otterbench distill`); default: undistilled")
    otter_ratio: float = _knob(0.125, "insertion size when no --otter is given (dx=d*r, ...)")
    layout: str = _knob(
        "fused",
        "Otter layout: fused (widened checkpoint with zero blocks, the default), packed (engine-ready, "
        "zero-free) or split (wrappers); fused and packed checkpoints are built once per run",
    )
    engine: str = _knob(
        "eager", "eager (transformers as is) or compiled (static KV cache + torch.compile where shapes allow)"
    )
    arms: str | None = _knob(None, "comma-separated arms to run instead of the suite's")
    device: str = _knob("auto", "auto, cpu, cuda or cuda:N")
    dtype: str | None = _knob(None, "float32, bfloat16 or float16 (default: the profile's)")
    batch_size: int | None = _knob(None, "prompts decoded together")
    max_new_tokens: int | None = _knob(None, "N: exactly this many new tokens per prompt, every arm")
    k: int | None = _knob(None, "ARGS top-k candidates scored per step")
    weight: float | None = _knob(None, "ARGS w in logit + w*reward")
    alpha: float | None = _knob(None, "DExperts alpha in logits + alpha*(expert - anti)")
    draft_length: int | None = _knob(None, "accel: draft tokens spec-separate proposes per base forward")
    filter_p: float | None = _knob(
        None, "DExperts top-p nucleus kept of the base logits before the experts' shift (1: no filter)"
    )
    num_prompts: int | None = _knob(None, "use this many prompts of the suite's file")
    repeats: int | None = _knob(None, "measured runs per arm (>= 1)")
    preset: str | None = _knob(
        None, "a run-length preset of the suite: ci = enough repeats for `otterbench check`"
    )
    warmup: int | None = _knob(None, "unmeasured runs per arm first (>= 0)")
    prompts: Path | None = _knob(None, 'your own prompts: JSONL, one {"prompt": "..."} per line')
    out: Path | None = _knob(None, "results root (default: ./results or $OTTERBENCH_RESULTS_DIR)")
    isolation: str = _knob("process", "process (one fresh process per arm) or inline (debugging)")
    device_map: str | None = _knob(None, 'e.g. "auto": let accelerate place a model too big for one GPU')
    cpu_threads: int = _knob(
        1, "torch threads per arm process on CPU (1: steady timings on shared cores; 0: torch's default)"
    )
    schedule: str = _knob(
        "auto",
        "interleaved (arms in live processes, measured round-robin: drift hits all alike), sequential "
        "(one arm after another), or auto (interleaved on CPU, sequential on GPU)",
    )
    save_outputs: bool = _knob(False, "write outputs.jsonl: every arm's generated ids and text, per prompt")

    def changed(self) -> dict[str, Any]:
        """The fields that differ from their defaults, as JSON-ready values (what a sweep records)."""
        return {
            f.name: str(value) if isinstance(value, Path) else value
            for f in dataclasses.fields(self)
            if (value := getattr(self, f.name)) != f.default
        }

    def with_values(self, values: dict[str, Any]) -> RunOptions:
        """These options with some fields replaced (a sweep point's values)."""
        return dataclasses.replace(self, **values)

    def to_config(self, default_out: Path) -> RunConfig:
        """Validate into a RunConfig; every bad value is one RunInputError/SuiteError line."""
        from otterbench.run.config import resolve_run_config  # the arm registry imports torch

        suite_overrides = {key: getattr(self, key) for key in SUITE_KNOBS}
        arms = [a.strip() for a in self.arms.split(",") if a.strip()] if self.arms else None
        return resolve_run_config(
            self.suite,
            out_dir=self.out or default_out,
            profile=self.profile,
            suite_overrides=suite_overrides,
            arms=arms,
            prompts=self.prompts,
            preset=self.preset,
            device=self.device,
            overrides={role: getattr(self, role) for role in MODEL_ROLES if getattr(self, role)},
            otter_path=str(self.otter) if self.otter else None,
            otter_ratio=self.otter_ratio,
            layout=self.layout,
            engine=self.engine,
            isolation=self.isolation,
            device_map=self.device_map,
            cpu_threads=self.cpu_threads,
            schedule=self.schedule,
            save_outputs=self.save_outputs,
        )


KNOB_NAMES = tuple(f.name for f in dataclasses.fields(RunOptions))
