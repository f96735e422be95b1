"""The decoding arms on tiny seeded models: matched pairs choose identical tokens, counters mean what they say."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from otterbench.arms import arm_names, build_arm, call_keys
from otterbench.arms.args import FaithfulRewardScorer
from otterbench.arms.base import Tally
from otterbench.arms.registry import ARMS, knob_defaults
from otterbench.arms.shared_prefix import SharedPrefixRewardScorer
from otterbench.backends import DEFAULT_BACKEND, refusal
from otterbench.models.build import make_causal_lm, make_reward_model
from otterbench.otter import OtterSpec, insert_otter
from otterbench.workload import Workload, build_workload

N, K = 6, 5
PROMPT_LENGTHS = (5, 9, 3)  # different lengths: batches are left padded


@pytest.fixture(scope="module")
def models() -> SimpleNamespace:
    return SimpleNamespace(
        base=make_causal_lm(seed=0),
        reward_model=make_reward_model(seed=1),
        expert=make_causal_lm(seed=2),
        anti_expert=make_causal_lm(seed=3),
        token_reward_model=make_causal_lm(seed=4),
    )


def prompts(lengths: tuple[int, ...] = PROMPT_LENGTHS, seed: int = 0) -> list[list[int]]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(3, 256, (n,), generator=generator).tolist() for n in lengths]


def workload(batch_size: int = 3, lengths: tuple[int, ...] = PROMPT_LENGTHS, **knobs) -> Workload:
    settings = {**knob_defaults(), "max_new_tokens": N, "k": K, **knobs}
    return Workload(prompts(lengths), batch_size=batch_size, vocab_size=256, pad_token_id=0, **settings)


def run(name: str, models, wl: Workload, otter=None):
    return build_arm(name, models, otter).run(wl, "cpu")


def test_args_optimized_chooses_the_same_tokens_as_faithful(models):
    wl = workload()
    faithful, optimized = run("args-faithful", models, wl), run("args-optimized", models, wl)
    assert optimized.token_ids == faithful.token_ids
    # the reward model must actually change decisions, or the equality above would prove nothing
    assert faithful.token_ids != run("base", models, wl).token_ids


def test_both_reward_scorers_equal_the_reward_model_on_unpadded_rows(models):
    wl = workload()
    batch = next(wl.batches("cpu"))
    candidates = torch.randint(3, 256, (3, K), generator=torch.Generator().manual_seed(1))
    scores = []
    for scorer_type in (FaithfulRewardScorer, SharedPrefixRewardScorer):
        scorer = scorer_type(models.reward_model, Tally())
        with torch.inference_mode():
            scorer.start(batch, wl)
            scores.append(scorer.score(candidates))
    with torch.inference_mode():  # the reference: the classifier on each prefix + candidate, no padding
        expected = torch.tensor(
            [
                [models.reward_model(torch.tensor([[*p, c]])).logits.item() for c in row.tolist()]
                for p, row in zip(wl.prompt_ids, candidates)
            ]
        )
    for got in scores:
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_dexperts_cached_chooses_the_same_tokens_as_faithful(models):
    wl = workload()
    faithful, cached = run("dexperts-faithful", models, wl), run("dexperts-cached", models, wl)
    assert cached.token_ids == faithful.token_ids
    assert faithful.token_ids != run("base", models, wl).token_ids


@pytest.mark.parametrize("name", ["base", "args-optimized", "args-token", "dexperts-cached"])
def test_left_padded_batches_decode_as_single_prompts(models, name):
    assert (
        run(name, models, workload(batch_size=3)).token_ids
        == run(name, models, workload(batch_size=1)).token_ids
    )


def test_args_token_picks_by_the_token_reward_models_next_token_logits(models):
    """argmax over the LLM's top-k of logit + w * (the token RM's logit for the candidate), uncached check."""
    wl = workload(weight=3.0)
    expected = []
    with torch.inference_mode():
        for prompt in wl.prompt_ids:
            ids = torch.tensor([prompt])
            for _ in range(N):
                logits, rewards = (m(ids).logits[0, -1] for m in (models.base, models.token_reward_model))
                top, cand = logits.topk(K)
                pick = cand[(top + 3.0 * rewards[cand]).argmax()]
                ids = torch.cat([ids, pick.view(1, 1)], dim=1)
            expected.append(ids[0, len(prompt) :].tolist())
    got = run("args-token", models, wl).token_ids
    assert got == expected
    assert got != run("base", models, wl).token_ids  # the token RM changes decisions


def test_otter_args_with_zero_weight_is_base(models):
    otter = insert_otter(models.base, OtterSpec.from_ratio(models.base.config, init="copy"))
    wl = workload(weight=0.0)
    assert run("otter-args", models, wl, otter).token_ids == run("base", models, wl).token_ids


@pytest.mark.parametrize("name", ["otter-args", "otter-dexperts"])
def test_otter_arms_with_zero_signal_are_base(models, name):
    otter = insert_otter(models.base, OtterSpec.from_ratio(models.base.config, init="zeros"))
    wl = workload()
    assert run(name, models, wl, otter).token_ids == run("base", models, wl).token_ids


class CountingObserver:
    def __init__(self) -> None:
        self.batches = self.steps = 0

    def start_batch(self) -> None:
        self.batches += 1

    def end_step(self) -> None:
        self.steps += 1


def record_widths(model, log: list[int]):
    """Log the number of input positions of every real forward call of `model`."""

    def hook(_module, args, kwargs):
        log.append((kwargs["input_ids"] if "input_ids" in kwargs else args[0]).shape[1])

    return model.register_forward_pre_hook(hook, with_kwargs=True)


def expected_calls(name: str, batches: int, prompts_: int) -> tuple[dict[str, int], int]:
    calls = dict.fromkeys(call_keys(), 0)
    rows = 0
    if name == "base":
        calls["llm"] = N * batches
    elif name == "args-token":  # one cached token-RM forward per step; one row per prompt scores all k
        calls.update(llm=N * batches, token_reward_model=N * batches)
        rows = prompts_ * N
    elif name.startswith("args"):
        calls["llm"] = N * batches
        calls["reward_model"] = N * batches + (batches if name == "args-optimized" else 0)  # + one prefill
        rows = K * prompts_ * N
    elif name.startswith("dexperts"):
        calls.update(llm=N * batches, expert=N * batches, anti_expert=N * batches)
        rows = 2 * prompts_ * N
    else:
        calls["otter"] = N * batches
    return calls, rows


def expected_widths(name: str, widths: tuple[int, ...]) -> dict[str, list[int]]:
    """Input positions of each real forward, batch after batch (prompt widths `widths`)."""
    cached = [w for width in widths for w in [width] + [1] * (N - 1)]
    uncached = [width + step for width in widths for step in range(N)]
    llm = uncached if name == "dexperts-faithful" else cached
    logs = {
        "base": [],
        "reward_model": [],
        "token_reward_model": [],
        "expert": [],
        "anti_expert": [],
        "otter": [],
    }
    if name.startswith("otter"):
        logs["otter"] = cached
    else:
        logs["base"] = llm
    if name == "args-faithful":  # prompt + candidate prefilled k times at once, then one position per row
        logs["reward_model"] = [w for width in widths for w in [width + 1] + [1] * (N - 1)]
    elif name == "args-optimized":  # prompt prefilled once, then the k candidates as k query positions
        logs["reward_model"] = [w for width in widths for w in [width] + [K] * N]
    elif name == "args-token":
        logs["token_reward_model"] = cached
    elif name.startswith("dexperts"):
        logs["expert"] = logs["anti_expert"] = llm
    return logs


# the speculative arms' calls depend on acceptance: tests/test_speculative.py counts them; an arm that runs
# only under a generate-level backend (args-vllm) has no step-level decoding to count
STEP_ARMS = [name for name in arm_names() if refusal(DEFAULT_BACKEND, ARMS[name]) is None]


@pytest.mark.parametrize("name", [name for name in STEP_ARMS if ARMS[name].task != "accel"])
def test_every_arm_generates_n_tokens_and_counts_its_calls(models, name):
    otter = insert_otter(models.base, OtterSpec.from_ratio(models.base.config))
    wl = workload(batch_size=2)  # 3 prompts: batches of 2 (width 9) and 1 (width 3)
    observer = CountingObserver()
    targets = {
        "base": models.base,
        "reward_model": models.reward_model.base_model,  # the arms call the decoder under the score head
        "token_reward_model": models.token_reward_model,
        "expert": models.expert,
        "anti_expert": models.anti_expert,
        "otter": otter,
    }
    logs = {role: [] for role in targets}
    hooks = [record_widths(model, logs[role]) for role, model in targets.items()]
    try:
        out = build_arm(name, models, otter).run(wl, "cpu", observer)
    finally:
        for hook in hooks:
            hook.remove()
    assert [len(row) for row in out.token_ids] == [N] * wl.num_prompts
    assert out.new_tokens == N * wl.num_prompts
    assert (observer.batches, observer.steps) == (2, 2 * N)
    calls, rows = expected_calls(name, batches=2, prompts_=3)
    assert out.calls == calls and out.rows_scored == rows
    assert logs == expected_widths(name, widths=(9, 3))


def test_bad_inputs_fail_with_one_clear_line(models):
    with pytest.raises(ValueError, match="unknown arm 'greedy'.*args-faithful"):
        build_arm("greedy", models)
    for knobs, field in [({"k": 0}, "k=0"), ({"k": 257}, "k=257")]:  # an arm refuses knobs out of bounds
        with pytest.raises(ValueError, match=field):
            build_arm("args-faithful", models).run(workload(**knobs), "cpu")
    with pytest.raises(ValueError, match="max_new_tokens=0"):
        workload(max_new_tokens=0)
    with pytest.raises(ValueError, match="batch_size=0"):
        workload(batch_size=0)
    with pytest.raises(ValueError, match="prompts"):
        Workload([], batch_size=1, max_new_tokens=1, vocab_size=256, pad_token_id=0)
    no_rm = SimpleNamespace(base=models.base, reward_model=None)
    for name in ("args-faithful", "args-optimized"):
        with pytest.raises(ValueError, match=f"arm {name} needs model\\(s\\) reward_model"):
            build_arm(name, no_rm)
    with pytest.raises(ValueError, match="needs model\\(s\\) otter"):
        build_arm("otter-args", models)


class CharTokenizer:
    """A stand-in tokenizer: one id per byte, offset past the 3 special ids."""

    pad_token_id, eos_token_id = 0, 2

    def __len__(self) -> int:
        return 259

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        return {"input_ids": [1] + [3 + b for b in text.encode()]}


def test_workload_is_built_once_and_fingerprinted():
    texts = ["ab", "abcd", "c", "hello"]
    a = build_workload(texts, CharTokenizer(), batch_size=2, max_new_tokens=4, num_prompts=3, seed=7)
    b = build_workload(texts, CharTokenizer(), batch_size=2, max_new_tokens=4, num_prompts=3, seed=7)
    assert a.fingerprint() == b.fingerprint() and a.num_prompts == 3
    c = build_workload(texts, CharTokenizer(), batch_size=2, max_new_tokens=4, num_prompts=3, seed=7, k=3)
    assert c.fingerprint() != a.fingerprint()
    batch = next(a.batches("cpu"))
    lengths = [len(p) for p in a.prompt_ids[:2]]
    assert batch.attention_mask.sum(dim=1).tolist() == lengths  # left padded: pads first, positions from 0
    assert batch.position_ids[batch.attention_mask.bool()].tolist() == [i for n in lengths for i in range(n)]
    with pytest.raises(ValueError, match="num_prompts=9"):
        build_workload(texts, CharTokenizer(), batch_size=2, max_new_tokens=4, num_prompts=9)
