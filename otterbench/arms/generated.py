"""An arm run by a generate-level backend: the backend owns the decode loop, the arm's spec owns the decision.

`GeneratedArm` gives the session the same face a step-level `Arm` has (`run`, `warm_up`, `name`), so a
measured repeat is a repeat whoever decodes: the backend loads the arm's models itself (from their sources),
then each run hands it the whole workload and turns its `GenerateOutput` (tokens, timings, memory facts) into
an `ArmOutput` whose `latency` replaces the harness's step timer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otterbench.arms.base import ArmOutput, call_keys
from otterbench.arms.spec import ArmSpec
from otterbench.backends import BackendSpec, GenerateBackend, GenerateOutput, ModelSources
from otterbench.knobs import knob_problems
from otterbench.trackers.latency import LatencyRecord, StepObserver
from otterbench.workload import Workload


class GeneratedArm:
    """One arm decoded by a generate-level backend."""

    not_static = None
    otter = None  # the backend holds the models: non-disruption asks it for passes (run/generated_check.py)

    def __init__(
        self,
        spec: ArmSpec,
        backend: BackendSpec,
        sources: ModelSources,
        device: Any,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = spec.name
        self.knobs = spec.knobs
        self.backend_name = backend.name
        create = spec.engine_loop or backend.create  # an arm may bring its own loop (ArmSpec.engine_loop)
        self.backend: GenerateBackend = create(dict(options or {}), device)
        self.backend.load(spec, sources, device)
        self.last: GenerateOutput | None = None  # the last run's output (its tokens, logprobs if given)

    def warm_up(self, workload: Workload, device: Any) -> dict[str, Any]:
        """The record's engine fields: the backend's name (it warms up inside its own loop, if at all)."""
        return {"engine": self.backend_name, "engine_note": None, "compile_s": None}

    def close(self) -> None:
        """Stop the backend's engine now (its processes with it), not at the interpreter's exit."""
        self.backend.close()

    def run(self, workload: Workload, device: Any, observer: StepObserver | None = None) -> ArmOutput:
        """Decode the whole workload through the backend; its own timings come back in `latency`."""
        problems = knob_problems(
            {knob.name: knob for knob in self.knobs}, workload.knobs, workload.vocab_size
        )
        if problems:
            raise ValueError(problems[0])
        out = self.last = self.backend.generate(workload)
        steps = len(out.ttft_s) + len(out.tpot_s)
        latency = LatencyRecord(out.ttft_s, out.tpot_s, out.total_s, steps, out.timer)  # type: ignore[arg-type]
        calls = {**dict.fromkeys(call_keys(), 0), **out.calls}
        new_tokens = sum(len(row) for row in out.token_ids)
        return ArmOutput(out.token_ids, calls, 0, new_tokens, latency=latency, engine_memory=dict(out.memory))
