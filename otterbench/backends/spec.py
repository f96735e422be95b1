"""What a decode backend is: `BackendSpec` (name, kind, options, availability, which arms it runs, how to make
one) and, for a backend that owns the whole decode loop, the `GenerateBackend` interface and its output.

Two kinds:
- "step": the arm keeps its decode loop and calls the backend once per model step (`Engine` in
  backends/step.py: eager transformers, or static caches + torch.compile). Every step-level arm runs on it.
- "generate": the backend takes the whole `Workload` and returns the arm's tokens, timings and memory facts
  (an inference engine such as vLLM). It runs the arms whose decision is one rule over a single model's
  next-token output (`ArmSpec.choose`, e.g. applied in a logits processor) and refuses the others.

Non-disruption under a generate-level backend (run/generated_check.py) asks the backend only for more
`generate` passes, after the measured repeats: the Otter arm's model decoded with the reference arm's rule
(`choose=` the base arm's greedy: its original response), and the base's workload once more as measured and
once under a harmless change (its prompts regrouped: `workload.batch_size` changed; a backend that
schedules its own batches may show no change, which leaves the verdict no room). Those passes, and no
measured repeat, ask `generate` for `logprobs`. Tokens are always enough; a backend that also fills
`GenerateOutput.logprobs` is judged on tokens and log-probabilities, and the verdict says which.
Torch-free: the command line validates `--engine` against the registry at start-up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from otterbench.knobs import Knob
from otterbench.otter.spec import PREFERRED_LAYOUTS

Kind = Literal["step", "generate"]
STATIC_ENGINE = "static"  # what an arm records under static caches left uncompiled (step.py's exact check)
EAGER_ENGINE = "eager"  # the eager backend's name (eager.py), also what an arm falls back to (step.py)


# the one knob that sizes tensor parallelism: a backend that splits a model across devices declares it among
# its options (`--tensor-parallel-size N`); preflight and the fused checkpoint's spec read it from here
TENSOR_PARALLEL_SIZE = Knob(
    "tensor_parallel_size", int, 1, "ranks (devices) a backend splits each model across", minimum=1
)


def greedy_choice(logits: Any, signal: Any, workload: Any) -> Any:
    """The plain greedy rule, argmax of the LLM's logits [B,V] -> [B,1]: an engine's own greedy sampling."""
    return logits.argmax(dim=-1, keepdim=True)


def _runs_every_arm(arm: Any) -> str | None:
    return None


def _always_available(device: Any) -> str | None:
    return None


def _starts_no_processes(options: Mapping[str, Any]) -> bool:
    return False


@dataclass(frozen=True)
class BackendSpec:
    """One decode backend, found by name in the registry (otterbench/backends/__init__.py)."""

    name: str
    kind: Kind
    help: str  # one line for --engine's help
    # step: (arm, device) -> Engine for that arm; generate: (options, device) -> GenerateBackend
    create: Callable[..., Any]
    # why it cannot run on `device` here (one line), or None; checked in the arm's process (torch loaded)
    unavailable: Callable[[Any], str | None] = _always_available
    # why it cannot run an arm (an ArmSpec), one line, or None: refused in preflight, exit 2
    refuses: Callable[[Any], str | None] = _runs_every_arm
    options: tuple[Knob, ...] = ()  # its own settings (e.g. TENSOR_PARALLEL_SIZE): each one a run option
    # the Otter layouts it serves, its preferred first: what a run measures without --layout (preflight
    # refuses a layout it does not serve, for a run with an Otter arm)
    layouts: tuple[str, ...] = PREFERRED_LAYOUTS
    # whether, under these options, it starts processes of its own inside the arm's process (an arm process
    # is then not daemonic: a daemonic one may not have children)
    starts_processes: Callable[[Mapping[str, Any]], bool] = _starts_no_processes
    origin: str = ""  # the module that registered it: an arm process imports it to find the spec


@dataclass(frozen=True)
class BackendSettings:
    """The backend a run decodes with and its own options, carried whole from options to config to job."""

    name: str = EAGER_ENGINE  # --engine (a registered backend)
    options: Mapping[str, Any] = field(default_factory=dict)  # the backend's own options, by name

    @property
    def tensor_parallel_size(self) -> int:
        """Ranks each model is split across (1 for a backend without the option)."""
        return int(self.options.get(TENSOR_PARALLEL_SIZE.name) or 1)


@dataclass
class GenerateOutput:
    """One generate-level run of a whole workload: what the arm produced and what the backend measured."""

    token_ids: list[list[int]]  # N new tokens per prompt, in workload prompt order
    ttft_s: list[float]  # time to first token, one per batch (or per request)
    tpot_s: list[float]  # time per later output token, one sample per step (or per request)
    total_s: float  # end to end, the workload's first request in to its last token out
    calls: dict[str, int] = field(default_factory=dict)  # forward calls per model, when the backend knows
    memory: Mapping[str, Any] = field(
        default_factory=dict
    )  # facts the backend knows (KV cache reserved, ...)
    timer: str = "perf_counter"  # how the timings were taken
    # optional evidence for the non-disruption check, when `generate` was asked for it: per prompt, the
    # log-probability the model's original next-token distribution gave each chosen token (log_softmax of
    # the vocabulary's logits, never normalised over signal columns; every pass of a run computed alike)
    logprobs: list[list[float]] | None = None


@dataclass(frozen=True)
class ModelSources:
    """Where an arm's models come from, for a backend that loads them itself."""

    sources: Mapping[str, str]  # role -> "tiny", hub id or local path ("otter": the fused checkpoint folder)
    dtype: str
    device_map: str | None = None


class GenerateBackend(Protocol):
    """A backend that owns the decode loop: loads the arm's models, then decodes whole workloads."""

    name: str

    def load(self, arm: Any, models: ModelSources, device: Any) -> None:
        """Load what `arm` (an ArmSpec) needs, in this process, before anything is measured."""

    def generate(self, workload: Any, choose: Any = None, logprobs: bool = False) -> GenerateOutput:
        """Exactly workload.max_new_tokens tokens per prompt, decided by the arm's rule, or by `choose` (same
        signature as `ArmSpec.choose`) when given: the non-disruption check passes the base arm's greedy.
        `logprobs`: the check asks for the chosen tokens' log-probabilities (a measured repeat never does);
        a backend that cannot give them leaves `GenerateOutput.logprobs` None."""

    def close(self) -> None:
        """Release what `load` started (an engine and its processes); called once the arm is done."""
