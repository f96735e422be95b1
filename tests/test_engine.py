"""The decode engines choose the same tokens: static-cache decoding is eager decoding, compiled or not."""

from __future__ import annotations

import dataclasses
import time
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from conftest import assert_close_in_dtype

from otterbench.arms import arm_names, build_arm
from otterbench.arms.base import Tally
from otterbench.arms.decoding import CachedLM
from otterbench.arms.registry import arm_info, knob_defaults
from otterbench.backends import BackendSettings, refusal
from otterbench.backends.step import Engine, compile_unavailable, warm_up_engine
from otterbench.models.tiny import build_tiny_model
from otterbench.otter import OtterSpec, insert_otter
from otterbench.results.files import load_run
from otterbench.run.config import RunInputError, resolve_run_config
from otterbench.run.options import RunOptions
from otterbench.run.pipeline import run_suite
from otterbench.workload import Workload

COMPILED_ARMS = ("base", "otter-args", "args-optimized")  # the arms the compiled-vs-eager check covers
# arms whose decode step has static shapes (the others say why in `not_static` and run eager)
STATIC_ARMS = tuple(
    arm
    for arm in arm_names()
    if arm not in ("dexperts-faithful", "spec-separate", "otter-spec")
    and refusal("compiled", arm_info(arm)) is None
)


@pytest.fixture(scope="module")
def tiny() -> SimpleNamespace:
    """The tiny profile's models (float32) and a split-layout Otter over its base."""
    roles = ("base", "reward_model", "token_reward_model", "expert", "anti_expert")
    models = SimpleNamespace(**{role: build_tiny_model(role) for role in roles})
    spec = OtterSpec.from_ratio(models.base.config, 0.125, signal="vocab")
    return SimpleNamespace(models=models, otter=insert_otter(models.base, spec))


def workload(prompts: int = 3, new_tokens: int = 4, batch_size: int = 2) -> Workload:
    """Prompts of different lengths (left padded), a smaller last batch when prompts > batch_size."""
    generator = torch.Generator().manual_seed(0)
    rows = [torch.randint(3, 4096, (n,), generator=generator).tolist() for n in (6, 3, 5)[:prompts]]
    return Workload(
        rows,
        batch_size=batch_size,
        max_new_tokens=new_tokens,
        vocab_size=4096,
        pad_token_id=0,
        knobs=knob_defaults(),
        k=3,
        alpha=1.0,
    )


def decode(tiny: SimpleNamespace, name: str, engine: Engine, wl: Workload, device: str = "cpu") -> list:
    arm = build_arm(name, tiny.models, tiny.otter)
    arm.engine = engine
    return arm.run(wl, device).token_ids


@pytest.mark.parametrize("name", STATIC_ARMS)
def test_static_cache_decoding_chooses_the_eager_tokens(tiny, name):
    # the compiled engine's decode logic (static caches, capacity-wide masks, in-place row selection and
    # cropping) without torch.compile: float32 on CPU it must choose exactly the eager engine's tokens
    wl = workload()
    eager = decode(tiny, name, Engine(), wl)
    static = Engine(static=True)
    assert decode(tiny, name, static, wl) == eager
    assert static._caches  # it did decode on static caches
    assert decode(tiny, name, static, wl) == eager  # caches reused across runs are reset, not stale


def test_a_shorter_run_reuses_the_static_caches(tiny):
    # the session's one-token prefill run must not allocate a second set of caches beside the decode ones
    wl, static = workload(), Engine(static=True)
    decode(tiny, "args-optimized", static, wl)
    caches = dict(static._caches)
    decode(tiny, "args-optimized", static, dataclasses.replace(wl, max_new_tokens=1))
    assert static._caches.keys() == caches.keys()
    assert all(static._caches[key] is cache for key, cache in caches.items())


def test_fused_otter_on_static_caches_chooses_the_eager_tokens(tiny):
    fused = SimpleNamespace(models=tiny.models, otter=tiny.otter.to_fused())
    wl = workload()
    assert decode(fused, "otter-args", Engine(static=True), wl) == decode(fused, "otter-args", Engine(), wl)


def first_step(model: Any, engine: Engine, wl: Workload, capacity: int | None = None) -> tuple:
    """Prefill the first batch (all positions) and feed its greedy token: (prefill, step) StepOutputs."""
    batch = next(wl.batches())
    engine.begin(wl)
    if capacity is not None:
        engine.capacity = capacity  # cache slots per sequence, set by hand to size the static caches exactly
    lm = CachedLM(model, "otter", Tally(), engine)
    with torch.inference_mode():
        prefill = lm.start(batch, all_positions=True)
        step = None if capacity is not None else lm.feed(prefill.logits[:, -1].argmax(-1, keepdim=True))
    return prefill, step


def test_static_cache_logits_match_eager_logits(tiny):
    # a different computation of the same logits: the static caches attend over all 10 slots of their
    # capacity (the unfed ones masked) where the DynamicCache holds the 7 keys fed so far, and a BLAS may sum
    # in another order when the key count changes (MKL on an AVX-512 EPYC: ~2e-7 in fp32). Same picks,
    # float32 tolerance.
    wl = workload(prompts=2)
    (_, eager), (_, static) = (
        first_step(tiny.otter, engine, wl) for engine in (Engine(), Engine(static=True))
    )
    assert torch.equal(static.logits.argmax(-1), eager.logits.argmax(-1))
    assert_close_in_dtype(static.logits, eager.logits)
    assert_close_in_dtype(static.signal, eager.signal)


def test_static_cache_sized_to_the_prompt_prefills_exactly_as_eager(tiny):
    # the same computation: with capacity equal to the fed length the static caches hold exactly the keys
    # the DynamicCache holds, so attention receives tensors of the same shapes, strides and mask; only the
    # cache's storage differs, and the logits must be bit-for-bit the eager ones
    wl = workload(prompts=2)
    prompt_length = next(wl.batches()).input_ids.shape[1]
    eager, _ = first_step(tiny.otter, Engine(), wl, prompt_length)
    static, _ = first_step(tiny.otter, Engine(static=True), wl, prompt_length)
    assert torch.equal(static.logits, eager.logits) and torch.equal(static.signal, eager.signal)


def test_an_arm_without_static_shapes_runs_eager_and_says_why(tiny):
    arm = build_arm("dexperts-faithful", tiny.models, engine="compiled")
    assert arm.engine.name == "eager" and "re-reads the whole growing sequence" in arm.engine.note
    assert build_arm("base", tiny.models, engine="eager").engine.note is None


def test_no_compiler_means_eager_with_one_line(tiny, monkeypatch, capsys):
    monkeypatch.setattr("otterbench.backends.step.shutil.which", lambda name: None)
    monkeypatch.delenv("CXX", raising=False)
    assert "no C++ compiler" in compile_unavailable(torch.device("cpu"))
    arm = build_arm("base", tiny.models, engine="compiled")
    assert arm.engine.name == "eager" and "no C++ compiler" in arm.engine.note
    assert capsys.readouterr().err.strip().count("\n") == 0  # one line


def test_a_compile_error_falls_back_to_eager_and_is_recorded(tiny, monkeypatch):
    def broken(self, fn, model):
        def raise_(*args):
            raise RuntimeError("dynamo could not trace this\nmore detail")

        return raise_

    monkeypatch.setattr(Engine, "_compile", broken)
    arm = build_arm("base", tiny.models, engine="compiled")
    wl = workload(prompts=2)
    info = warm_up_engine(arm, wl, torch.device("cpu"))
    assert info["engine"] == "eager" and info["compile_s"] is None
    assert "RuntimeError: dynamo could not trace this" in info["engine_note"]
    assert arm.run(wl, "cpu").token_ids == decode(tiny, "base", Engine(), wl)


def test_unknown_engine_is_refused(tiny):
    with pytest.raises(ValueError, match="engine='fast' is unknown: choose eager or compiled"):
        build_arm("base", tiny.models, engine="fast")


@pytest.mark.parametrize(
    "name",
    [
        "base",
        "args-faithful",
        pytest.param("args-optimized", marks=pytest.mark.slow),  # ~10-30 s of dynamo tracing each;
        pytest.param("otter-args", marks=pytest.mark.slow),  # base and args-faithful cover both step kinds
    ],
)
def test_compiled_steps_compile_once_per_batch_shape_not_per_step(tiny, monkeypatch, name):
    # dynamo with a backend that only counts graphs (no inductor): every decode step of a batch shape must
    # reuse one graph, or each new length would recompile (minutes on CPU, a CUDA graph each on GPU)
    graphs = []

    def counting_backend(graph, example_inputs):
        graphs.append(graph)
        return graph.forward

    real_compile = torch.compile
    monkeypatch.setattr(
        torch, "compile", lambda fn, **_: real_compile(fn, backend=counting_backend, dynamic=False)
    )
    torch._dynamo.reset()
    wl = workload(prompts=3, new_tokens=4, batch_size=2)  # batches of 2 rows and 1 row
    arm = build_arm(name, tiny.models, tiny.otter, engine="compiled")
    assert arm.run(wl, "cpu").token_ids == decode(tiny, name, Engine(), wl)
    arm.run(wl, "cpu")
    # per batch shape one graph per step function: the LLM's step; args-faithful's reward-model step;
    # args-optimized's candidate scoring and its keep of the chosen candidate (no graph break in either)
    step_functions = {"base": 1, "otter-args": 1, "args-faithful": 2, "args-optimized": 3}[name]
    assert len(graphs) == 2 * step_functions


@pytest.mark.slow  # inductor compiles C++ on CPU: ~15-60 s per graph on a shared 2-core machine
@pytest.mark.parametrize("name", COMPILED_ARMS)
def test_compiled_decoding_chooses_the_eager_tokens_on_cpu(tiny, name):
    wl = workload(prompts=2, new_tokens=4)
    arm = build_arm(name, tiny.models, tiny.otter, engine="compiled")
    assert arm.engine.name == "compiled"
    info = warm_up_engine(arm, wl, torch.device("cpu"))
    assert info["engine"] == "compiled" and info["compile_s"] > 0
    assert arm.run(wl, "cpu").token_ids == decode(tiny, name, Engine(), wl)


@pytest.mark.gpu
@pytest.mark.parametrize("name", COMPILED_ARMS)
def test_compiled_decoding_chooses_the_eager_tokens_on_cuda(tiny, name):
    # float32 on CUDA: CUDA graphs (reduce-overhead) replaying static caches must pick the eager tokens
    device = torch.device("cuda")
    models = SimpleNamespace(**{role: m.to(device) for role, m in vars(tiny.models).items()})
    spec = OtterSpec.from_ratio(models.base.config, 0.125, signal="vocab")
    on_gpu = SimpleNamespace(models=models, otter=insert_otter(models.base, spec))
    wl = workload(prompts=3, new_tokens=4)
    arm = build_arm(name, on_gpu.models, on_gpu.otter, engine="compiled")
    start = time.perf_counter()
    info = warm_up_engine(arm, wl, device)
    assert info["engine"] == "compiled", info["engine_note"]
    assert info["compile_s"] <= time.perf_counter() - start
    eager = decode(on_gpu, name, Engine(), wl, "cuda")
    assert arm.run(wl, device).token_ids == eager
    assert arm.run(wl, device).token_ids == eager  # graph replays on reused caches


def test_a_run_records_the_engine_per_arm_and_in_its_config(tmp_path, monkeypatch):
    # torch.compile stubbed to the uncompiled step (inductor takes minutes on CPU): the run's plumbing
    # (static caches, the compile run before measuring, results fields and schema) is what is checked here
    monkeypatch.setattr(Engine, "_compile", lambda self, fn, model: lambda *args: fn(model, *args))
    small = {"num_prompts": 4, "max_new_tokens": 3, "batch_size": 2, "repeats": 1, "warmup": 0, "k": 4}
    arms = ["base", "args-optimized", "otter-args"]
    config = resolve_run_config(
        "safety",
        out_dir=tmp_path,
        suite_overrides=small,
        arms=arms,
        isolation="inline",
        device="cpu",
        engine="compiled",
    )
    results = load_run(run_suite(config).run_dir)  # validates against the schema
    assert results["config"]["engine"] == "compiled"
    for arm in results["arms"]:
        assert arm["status"] == "ok" and arm["engine"] == "compiled" and arm["engine_note"] is None
        assert arm["compile_s"] > 0
    eager_config = dataclasses.replace(config, backend=BackendSettings("eager"))
    eager = load_run(run_suite(eager_config).run_dir)
    assert [a["token_ids_hash"] for a in eager["arms"]] == [a["token_ids_hash"] for a in results["arms"]]
    assert all(a["engine"] == "eager" and a["compile_s"] is None for a in eager["arms"])


def test_an_unknown_engine_is_refused_at_the_boundary(tmp_path):
    with pytest.raises(RunInputError, match="--engine='fast' is unknown: choose eager or compiled"):
        resolve_run_config("safety", out_dir=tmp_path, engine="fast")


@pytest.mark.parametrize("engine", ["eager", "compiled"])
def test_another_backends_option_is_refused_not_ignored(tmp_path, engine):
    # --tensor-parallel-size belongs to vllm: under a step backend it would split nothing, in silence
    with pytest.raises(RunInputError, match=f"an option of --engine vllm; --engine {engine} has no such"):
        RunOptions(engine=engine, tensor_parallel_size=2).to_config(tmp_path)
    assert RunOptions(engine=engine, tensor_parallel_size=1).to_config(tmp_path).backend.options == {}
