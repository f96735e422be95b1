"""The ARGS task (harmless responses): top-k candidates of the LLM, each scored by a reward, `logit + w*reward`.

Five arms share the rule (`otterbench/arms/decoding.py::args_choice`) and its knobs k and w; they differ in
where the reward comes from: a separate reward model driven as the ARGS reference does (`args-faithful`),
with a shared prefix cache (`args-optimized`) or served by vLLM beside the vLLM-served policy (`args-vllm`,
`--engine vllm` only), a token-level reward model (`args-token`), or Otter's signal.
"""

from __future__ import annotations

from typing import Any

from otterbench.arms.spec import ArmSpec, CostModel, Knob, ModelsByRole, TaskSpec

K = Knob("k", int, 10, "ARGS top-k candidates scored per step", minimum=1, at_most_vocab=True)
WEIGHT = Knob("weight", float, 1.0, "ARGS w in logit + w*reward")
KNOBS = (K, WEIGHT)
# args-faithful's reward-model cache holds k rows per prompt; each decode step its attention reads the k rows,
# and re-expanding the chosen row (backends/step.py `select_rows`) gathers it into a k-row temporary (read k,
# write k) and copies that back into the cache in place (read k, write k): 5k rows moved per step. (Eager,
# transformers' DynamicCache appends by concatenation, read k + write k, and re-expands by indexing, read k +
# write k: also 5k.) At context T a row is T x the reward model's KV bytes per token.
FAITHFUL_KV_ROWS_PER_CANDIDATE = 5


def _faithful(models: ModelsByRole) -> Any:
    from otterbench.arms.args import args_faithful

    return args_faithful(models["base"], models["reward_model"])


def _optimized(models: ModelsByRole) -> Any:
    from otterbench.arms.args import args_optimized

    return args_optimized(models["base"], models["reward_model"])


def _engine_only(models: ModelsByRole) -> Any:
    raise ValueError("args-vllm has no step-level decoding: it runs under --engine vllm only")


def _vllm_loop(options: Any, device: Any) -> Any:
    from otterbench.arms.args_engine import vllm_args_loop

    return vllm_args_loop(options, device)


def _token(models: ModelsByRole) -> Any:
    from otterbench.arms.token_reward import TokenRewardArm

    return TokenRewardArm(models["base"], models["token_reward_model"])


def _otter(models: ModelsByRole) -> Any:
    from otterbench.arms.decoding import args_signal_choice
    from otterbench.arms.otter import OtterArm

    return OtterArm("otter-args", models["otter"], args_signal_choice)


def _otter_rule(logits: Any, signal: Any, workload: Any) -> Any:
    from otterbench.arms.decoding import args_signal_choice

    return args_signal_choice(logits, signal, workload)


def _teacher(models: Any, workload: Any, device: Any) -> Any:
    from otterbench.arms.teacher import collect_args_teacher

    return collect_args_teacher(models, workload, device)


def _forced_choice(logits: Any, signal: Any, workload: Any, candidates: Any) -> Any:
    from otterbench.arms.decoding import args_forced_choice

    return args_forced_choice(logits, signal, workload, candidates)


def _faithful_cost(model: CostModel) -> Any:
    # k RM rows per step, its k-row cache read and re-expanded (FAITHFUL_KV_ROWS_PER_CANDIDATE), the prompt
    # prefilled k times
    k, moved = model.k, FAITHFUL_KV_ROWS_PER_CANDIDATE * model.k
    return model.cached("base") + model.cached(
        "reward_model", rows=k, cache_rows=k, moved_rows=moved, prefills=k
    )


def _optimized_cost(model: CostModel) -> Any:
    # one shared RM prefix cache; the k candidates are k positions over it, their KV transient
    return model.cached("base") + model.cached("reward_model", rows=model.k, transient_rows=model.k)


def _vllm_cost(model: CostModel) -> Any:
    # no hook for a second model (arms/args_engine.py): each token re-sends every sequence (T tokens) to the
    # policy and T+1-token sequences (one per candidate) to the reward model. vLLM's prefix cache serves whole
    # blocks of what earlier steps computed and recomputes the rest, 1..block tokens, (block+1)/2 on average,
    # all T while no block is full (rows beyond the one a cached decode writes are rewritten KV: transient);
    # each request's attention reads its own T-token prefix (the reward model: k per sequence, their shared
    # blocks held once); each request's output heads run at its last position. The first step prefills the prompt once per engine: blocks allocated for one request
    # serve the next within the step.
    block, k = model.vllm_block_size, model.k
    tail = model.t if model.t <= block else (block + 1) / 2
    policy = model.cached("base", rows=tail, transient_rows=tail - 1, head_rows=1)
    return policy + model.cached(
        "reward_model", rows=k * tail, moved_rows=k, transient_rows=k * tail, head_rows=k
    )


def _token_cost(model: CostModel) -> Any:
    # one cached forward of a causal LM whose next-token logits score every candidate (it shares the vocab)
    return model.cached("base") + model.cached("token_reward_model", same_vocab=True)


def _otter_cost(model: CostModel) -> Any:
    return model.otter()


_SEPARATE = {
    "role": "separate",
    "task": "args",
    "counterpart": "otter-args",
    "knobs": KNOBS,
    "origin": __name__,
}
SPECS = (
    ArmSpec(
        "args-faithful",
        needs=("base", "reward_model"),
        build=_faithful,
        baseline="faithful",
        cost=_faithful_cost,
        **_SEPARATE,
    ),
    ArmSpec(
        "args-optimized",
        needs=("base", "reward_model"),
        build=_optimized,
        baseline="optimized",
        decides_as="args-faithful",
        cost=_optimized_cost,
        **_SEPARATE,
    ),
    # the policy and the reward model each served by vLLM (prefix caching), two engine calls per token
    ArmSpec(
        "args-vllm",
        needs=("base", "reward_model"),
        build=_engine_only,
        baseline="optimized",
        decides_as="args-faithful",
        backends=("vllm",),
        engine_loop=_vllm_loop,
        cost=_vllm_cost,
        cost_note="args-vllm re-sends each sequence every token: vLLM's prefix cache serves whole blocks of "
        "{vllm_block_size} tokens, each request recomputes the rest (1 to {vllm_block_size}, the mean counted)",
        **_SEPARATE,
    ),
    ArmSpec(
        "args-token",
        needs=("base", "token_reward_model"),
        build=_token,
        baseline="token-level",
        cost=_token_cost,
        **_SEPARATE,
    ),
    ArmSpec(
        "otter-args",
        "otter",
        "args",
        ("otter",),
        _otter,
        knobs=KNOBS,
        cost=_otter_cost,
        choose=_otter_rule,
        signals=("vocab", "scalar"),
        origin=__name__,
    ),
)
TASKS = (
    TaskSpec(
        "args",
        "signal",
        ("base", "reward_model"),
        teacher=_teacher,
        forced_choice=_forced_choice,
        side_student="token_reward_model",
    ),
)
