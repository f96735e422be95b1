"""Whether arms that compute one decision in different forms chose the same tokens in this run.

An arm may declare the arm whose tokens it reproduces in exact arithmetic (`decides_as` in results.json,
from ArmSpec): args-optimized scores args-faithful's candidates over a shared prefix instead of k rows,
dexperts-cached caches what dexperts-faithful recomputes, the speculative arms keep the base's greedy tokens.
Their costs are compared as the same decision made another way, so a run with both says whether the tokens
were equal. In float32 they should be; in bfloat16 or float16 the other kernel shapes round differently and
a near-tie between two candidates can flip, after which the rows continue from different tokens (every arm
still decodes exactly N tokens per prompt, so the cost comparison keeps its workload).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LOW_PRECISION = ("bfloat16", "float16")


@dataclass(frozen=True)
class DecisionPair:
    arm: str
    decides_as: str
    same: bool


def decision_pairs(results: dict[str, Any]) -> list[DecisionPair]:
    """Each finished arm with a `decides_as` arm that also finished in the run, and whether their tokens match."""
    hashes = {arm["name"]: arm.get("token_ids_hash") for arm in results["arms"] if arm["status"] == "ok"}
    return [
        DecisionPair(arm["name"], arm["decides_as"], hashes[arm["name"]] == hashes[arm["decides_as"]])
        for arm in results["arms"]
        if arm.get("decides_as") in hashes and arm["name"] in hashes
    ]


def decisions_line(results: dict[str, Any]) -> tuple[str, bool] | None:
    """(`decisions: args-optimized = args-faithful, ...`, whether it is a warning); None without a pair."""
    pairs = decision_pairs(results)
    if not pairs:
        return None
    text = "decisions (equal in exact arithmetic): " + ", ".join(
        f"{pair.arm} {'=' if pair.same else '≠'} {pair.decides_as}" for pair in pairs
    )
    if all(pair.same for pair in pairs):
        return text + " (same tokens)", False
    dtype = results.get("config", {}).get("dtype")
    if dtype in LOW_PRECISION:
        return (
            f"{text}: {dtype} rounds the other kernel shapes differently and a near-tie flipped (every arm "
            "still decodes N tokens per prompt)",
            False,
        )
    return f"{text}: in {dtype} their tokens should be identical; check the differing arm", True
