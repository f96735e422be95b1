"""Non-disruption judged against the base's own numerics: `exact`, `within_base_numerics` or `disrupted`.

The one home of the classes and their rule; the run writes the verdict into results.json, the summary prints
it, the gate compares it between two runs. Inputs: the run's non_disruption block (Otter against the base
over the whole workload) and its `yardstick` (the base against itself under harmless changes, run/yardstick.py).
- exact: every compared logit (prompt, cached decode, full forward) is torch.equal to the base's.
- full precision (float32): within when max |Δlogit| <= the dtype's tolerance and Otter's own greedy tokens
  are the base's; else disrupted. The yardstick is recorded beside it, not used.
- half precision (bfloat16, float16): within when Otter's max |Δlogit| is at most `WITHIN_RATIO` times the
  yardstick's (the largest deviation the base shows under a harmless change: a maximum is itself noisy, so
  one run's deviation of the same size may land on either side of 1x); else disrupted. A base bit-stable
  under every change leaves no room: any deviation is then disruption. Argmax agreement is reported beside
  the base's own; it decides nothing (a flip at a near-tie is what the base's own changes show too).
"""

from __future__ import annotations

from typing import Any

from otterbench.results.thresholds import DEFAULT_DEVIATION_TOLERANCE

EXACT, WITHIN, DISRUPTED = "exact", "within_base_numerics", "disrupted"
VERDICTS = (EXACT, WITHIN, DISRUPTED)  # best first: a run whose verdict moved right has regressed
WITHIN_RATIO = 2.0
FULL_PRECISION_TOLERANCE = {"float32": DEFAULT_DEVIATION_TOLERANCE}  # max |Δlogit|, absolute


def ratio_to_yardstick(block: dict[str, Any]) -> float | None:
    """Otter's max |Δlogit| over the base's own largest; None without a yardstick or when the base's is 0."""
    yardstick = block.get("yardstick") or {}
    own, otter = yardstick.get("max_abs_logit_diff"), block.get("max_abs_logit_diff")
    return None if not own or otter is None else otter / own


def _tokens_identical(block: dict[str, Any]) -> bool:
    """Otter's own greedy tokens are the base's: in the check, and against the base arm where it ran."""
    in_check = block.get("greedy_token_ids_hash") == block.get("base_greedy_token_ids_hash")
    return in_check and block.get("greedy_tokens_identical") is not False


def judge(block: dict[str, Any], dtype: str) -> dict[str, Any]:
    """`verdict`, `ratio_to_yardstick` and `criterion` (the rule that decided) for a measured block."""
    ratio = ratio_to_yardstick(block)
    if block["exact"]:
        return {"verdict": EXACT, "ratio_to_yardstick": ratio, "criterion": "every logit torch.equal"}
    deviation = block["max_abs_logit_diff"]
    tolerance = FULL_PRECISION_TOLERANCE.get(dtype)
    if tolerance is not None:
        within = deviation <= tolerance and _tokens_identical(block)
        criterion = f"{dtype}: max |Δlogit| <= {tolerance:g} and identical greedy tokens"
    else:
        within = ratio is not None and ratio <= WITHIN_RATIO
        criterion = f"{dtype}: max |Δlogit| <= {WITHIN_RATIO:g}x the base's own under harmless changes"
    return {"verdict": WITHIN if within else DISRUPTED, "ratio_to_yardstick": ratio, "criterion": criterion}


def verdict_of(block: dict[str, Any]) -> str | None:
    """A block's verdict; a file written before verdicts existed is `exact` when bit-equal, else unjudged."""
    if "verdict" in block:
        return block["verdict"]
    return EXACT if block.get("exact") else None
