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
Under a generate-level backend the logits stay inside the engine: the block is judged on what the backend
gave (`judged_on`: "tokens", or "tokens+logprobs"; run/generated_check.py). Its `exact` field stays null (no
logit was compared), but with log-probabilities the verdict may be exact:
- exact: Otter's greedy tokens are the base's and every chosen token's log-probability is bit-equal to the
  base's (max |Δlogprob| 0): all the engine shows is identical. Tokens alone are never exact.
- full precision: within when Otter's greedy tokens are the base's (its check pass and its measured arm),
  and (logprobs) their max |Δlogprob| is within the dtype's tolerance;
- half precision: within when Otter's greedy tokens stay with the base arm's at least as long as the base's
  own do under a harmless change (`token_agreement`, the yardstick's), and (logprobs) max |Δlogprob| is at
  most `WITHIN_RATIO` times the base's own; without a yardstick only identical tokens are within.
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


def was_measured(block: dict[str, Any]) -> bool:
    """Otter was compared with the base (files before `measured` existed: when `exact` is set)."""
    return bool(block.get("measured", block.get("exact") is not None))


def judge(block: dict[str, Any], dtype: str) -> dict[str, Any]:
    """`verdict`, `ratio_to_yardstick` and `criterion` (the rule that decided) for a measured block."""
    if block.get("judged_on", "logits") != "logits":
        return _judge_tokens(block, dtype)
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


def _judge_tokens(block: dict[str, Any], dtype: str) -> dict[str, Any]:
    """The verdict of a block judged on tokens (and logprobs, when the backend gave them)."""
    yardstick = block.get("yardstick") or {}
    lp, own_lp = block.get("max_abs_logprob_diff"), yardstick.get("max_abs_logprob_diff")
    ratio = None if lp is None or not own_lp else lp / own_lp
    tolerance = FULL_PRECISION_TOLERANCE.get(dtype)
    identical = block["token_agreement"] == 1.0 and block.get("greedy_tokens_identical") is not False
    under = f"judged on {block['judged_on']} under {block.get('backend')}"
    if identical and lp == 0.0:
        rule = "greedy tokens identical, every chosen token's log-probability bit-equal"
        return {"verdict": EXACT, "ratio_to_yardstick": ratio, "criterion": f"{under}: {rule}"}
    if tolerance is not None:
        within = identical and (lp is None or lp <= tolerance)
        rule = f"{dtype}: greedy tokens identical" + (
            "" if lp is None else f", max |Δlogprob| <= {tolerance:g}"
        )
    elif not yardstick:
        within, rule = identical, f"{dtype}: greedy tokens identical (no yardstick from the backend)"
    else:
        within = block["token_agreement"] >= yardstick["token_agreement"]
        rule = f"{dtype}: greedy tokens agree at least as long as the base's own under a harmless change"
        if lp is not None and own_lp is not None:
            within = within and lp <= WITHIN_RATIO * own_lp
            rule += f", max |Δlogprob| <= {WITHIN_RATIO:g}x the base's own"
    return {
        "verdict": WITHIN if within else DISRUPTED,
        "ratio_to_yardstick": ratio,
        "criterion": f"{under}: {rule}",
    }


def verdict_of(block: dict[str, Any]) -> str | None:
    """A block's verdict; a file written before verdicts existed is `exact` when bit-equal, else unjudged."""
    if "verdict" in block:
        return block["verdict"]
    return EXACT if block.get("exact") else None
