"""Non-disruption under a generate-level backend: Otter's greedy tokens against the base arm's, same backend.

A generate-level backend keeps the logits inside its engine, so the check asks it only for tokens (and the
log-probabilities of the chosen tokens, when it gives them), through extra `generate` passes after the
measured repeats (a check, not serving; backends/spec.py):
- the Otter arm's process: its model decoded with the reference arm's rule (the base arm's greedy over the
  original logits, the signal ignored): what the paper calls the original response, still accessible;
- the base arm's process: its measured tokens (decoded once more with their log-probabilities, which no
  measured repeat asks for), and one more pass under a harmless change (its prompts regrouped, as
  run/yardstick.py's batch composition): the base's own yardstick;
- the integration arm's process, when one ran (base-plugin: the same base served on Otter's norm path): its
  greedy pass, a second harmless change (the same weights and math through the kernels Otter's engine runs,
  as run/yardstick.py's other engine).
The parent sets them against each other (`generated_block`) and judges the result like the step-level
check (results/disruption_verdict.py), saying what it was judged on.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from otterbench.arms.generated import GeneratedArm
from otterbench.arms.registry import reference_spec
from otterbench.arms.spec import ArmSpec
from otterbench.backends import GenerateOutput
from otterbench.results.disruption_verdict import judge
from otterbench.run.record import token_ids_hash
from otterbench.run.yardstick import composition_change
from otterbench.workload import Workload

SCOPE = "whole workload: greedy tokens decoded by the backend"
CHECK_ROLES = ("base", "otter", "integration")  # the arms whose processes add passes to the check
NORM_PATH_CHANGE = "the base on Otter's norm path (the integration arm) vs the base"


def _pass(out: GenerateOutput) -> dict[str, Any]:
    return {"token_ids": out.token_ids, "logprobs": out.logprobs}


def generated_passes(arm: GeneratedArm, spec: ArmSpec, workload: Workload) -> dict[str, Any] | None:
    """What this arm's process adds to the check, after its measured repeats; None for other roles. Every
    pass asks for log-probabilities (the measured repeats did not: they cost the backend time)."""
    if spec.role == "otter":
        greedy = arm.backend.generate(workload, choose=reference_spec().choose, logprobs=True)
        return {"backend": arm.backend_name, "greedy": _pass(greedy)}
    if spec.role not in CHECK_ROLES or arm.last is None:
        return None
    measured = _as_measured(arm, workload)
    if spec.role == "integration":
        return {"backend": arm.backend_name, "norm_path": _pass(measured)}
    change, yardstick = composition_change(workload), None
    if change is not None:
        regrouped = arm.backend.generate(dataclasses.replace(workload, batch_size=change[0]), logprobs=True)
        yardstick = {"change": change[1], **_pass(regrouped)}
    return {"backend": arm.backend_name, "reference": _pass(measured), "yardstick": yardstick}


def _as_measured(arm: GeneratedArm, workload: Workload) -> GenerateOutput:
    """The arm's workload decoded as measured, with log-probabilities: its last repeat when that carries
    them, else one more pass."""
    if arm.last.logprobs is not None:
        return arm.last
    return arm.backend.generate(workload, logprobs=True)


def _agreed(reference: list[int], other: list[int]) -> int:
    """How many leading tokens two rows share."""
    for index, (a, b) in enumerate(zip(reference, other)):
        if a != b:
            return index
    return len(reference)


def compare_passes(reference: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """Tokens kept with the reference before each row's first divergence, and the largest |Δlogprob| over
    those (same context, same token; None when either pass has no logprobs)."""
    rows = list(zip(reference["token_ids"], other["token_ids"], strict=True))
    agreed = [_agreed(ref, new) for ref, new in rows]
    deviation = None
    if reference["logprobs"] is not None and other["logprobs"] is not None:
        pairs = zip(reference["logprobs"], other["logprobs"], agreed)
        deviation = max((abs(a - b) for ref, new, n in pairs for a, b in zip(ref[:n], new[:n])), default=0.0)
    return {
        "token_agreement": sum(agreed) / max(1, sum(len(ref) for ref, _ in rows)),
        "rows_identical": sum(n == len(ref) for n, (ref, _) in zip(agreed, rows)),
        "rows": len(rows),
        "positions": sum(agreed),
        "max_abs_logprob_diff": deviation,
    }


def _yardstick(base: dict[str, Any], integration: dict[str, Any] | None) -> dict[str, Any] | None:
    """The base against itself under each harmless change the run's passes hold, and the widest of them (the
    lowest token agreement, the largest |Δlogprob|), as run/yardstick.py aggregates its changes."""
    changes = {}
    if base["yardstick"] is not None:
        own = compare_passes(base["reference"], base["yardstick"])
        changes["batch_composition"] = {"change": base["yardstick"]["change"], **own}
    if integration is not None:
        changes["norm_path"] = {"change": NORM_PATH_CHANGE, **compare_passes(base["reference"], integration)}
    if not changes:
        return None
    widest = min(changes.values(), key=lambda change: change["token_agreement"])
    deviations = [change["max_abs_logprob_diff"] for change in changes.values()]
    return {
        "scope": SCOPE,
        **{key: widest[key] for key in ("token_agreement", "rows_identical", "rows", "positions")},
        "max_abs_logprob_diff": None if None in deviations else max(deviations),
        "changes": changes,
    }


def generated_block(
    report: dict[str, Any],
    base: dict[str, Any] | None,
    base_hash: str | None,
    layout: str,
    dtype: str,
    integration: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """results.json's non_disruption block from the Otter process's `report`, the base arm's passes and, when
    an integration arm ran, its pass; None without a base arm's passes to judge against."""
    if base is None:
        return None
    greedy, reference = report["greedy"], base["reference"]
    logprobs = greedy["logprobs"] is not None and reference["logprobs"] is not None
    block = {
        "layout": layout,
        "scope": SCOPE,
        "backend": report["backend"],
        "judged_on": "tokens+logprobs" if logprobs else "tokens",
        "measured": True,
        "exact": None,  # the logits stay inside the engine: never claimed bit-for-bit
        "max_abs_logit_diff": None,
        "argmax_agreement": None,
        **compare_passes(reference, greedy),
        "greedy_token_ids_hash": token_ids_hash(greedy["token_ids"]),
        "base_greedy_token_ids_hash": token_ids_hash(reference["token_ids"]),
        "base_arm_token_ids_hash": base_hash,
        "greedy_tokens_identical": token_ids_hash(greedy["token_ids"]) == base_hash,
        "yardstick": _yardstick(base, integration),
    }
    return {**block, **judge(block, dtype)}
