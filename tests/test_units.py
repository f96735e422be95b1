"""Arms and decode backends are units: a toy arm and a toy generate-level backend, declared in tests/toy_units.py
alone, run through `run`; the registries agree with the results schema; a backend refuses arms it cannot run.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import toy_units
from factories import make_results
from typer.testing import CliRunner

import otterbench
from otterbench.arms.registry import ARMS, arm_names, unregister_arm
from otterbench.arms.spec import ROLES
from otterbench.backends import (
    STATIC_ENGINE,
    backend_names,
    backend_spec,
    register_backend,
    unregister_backend,
)
from otterbench.cli import app
from otterbench.otter.spec import LAYOUTS
from otterbench.results.files import (
    ResultsError,
    _shipped_schema_text,
    load_run,
    results_schema,
    validate_results,
)
from otterbench.results.summary import non_disruption_line
from otterbench.run import pipeline
from otterbench.run.options import RunOptions
from otterbench.run.settings import ISOLATIONS
from otterbench.run.suite import load_prompts, suites_dir

SMALL = {"device": "cpu", "isolation": "inline", "num_prompts": 3, "max_new_tokens": 4, "repeats": 1}
SMALL |= {"warmup": 0, "batch_size": 2, "save_outputs": True}


@pytest.fixture(autouse=True, scope="module")
def _toys():
    """The toy arm and backend, registered for this module's tests only (other modules' arm lists stay)."""
    toy_units.register()
    yield
    unregister_arm(toy_units.TOY_ARM.name)
    unregister_arm(toy_units.TOY_OWN_LOOP.name)
    unregister_backend(toy_units.TOY_BACKEND.name)


def _outputs(run_dir: Path) -> dict[str, list[list[int]]]:
    rows = [json.loads(line) for line in (run_dir / "outputs.jsonl").read_text().splitlines()]
    found: dict[str, list[list[int]]] = {}
    for row in rows:
        found.setdefault(row["arm"], []).append(row["token_ids"])
    return found


def _toy_suite(tmp_path: Path) -> Path:
    prompts = load_prompts(suites_dir() / "prompts" / "safety.jsonl")[:4]
    (tmp_path / "toy.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    suite = tmp_path / "toy.toml"
    suite.write_text(
        'description = "a toy task"\ntask = "toy"\narms = ["base", "toy-boost"]\nprompts = "toy.jsonl"\n'
        'max_new_tokens = 4\nbatch_size = 2\nseed = 0\n\n[profiles.tiny]\nbase = "tiny"\n'
    )
    return suite


def test_the_registries_agree_with_the_results_schema():
    shipped = json.loads(_shipped_schema_text())
    assert shipped["$defs"]["arm"]["properties"]["role"]["enum"] == list(ROLES)
    assert {ARMS[name].role for name in arm_names()} <= set(ROLES)
    assert shipped["properties"]["isolation"]["enum"] == list(ISOLATIONS)
    assert shipped["properties"]["otter"]["properties"]["layout"]["enum"] == list(LAYOUTS)
    # the shipped file names no engine: a registered backend needs no schema edit
    assert "enum" not in shipped["properties"]["config"]["properties"]["engine"]
    schema = results_schema()
    assert schema["properties"]["config"]["properties"]["engine"]["enum"] == list(backend_names())
    assert schema["$defs"]["arm"]["properties"]["engine"]["enum"] == [*backend_names(), STATIC_ENGINE, None]
    results = make_results()
    validate_results(results)
    results["config"]["engine"] = "no-such-backend"
    with pytest.raises(ResultsError, match="no-such-backend"):
        validate_results(results)


def test_a_toy_arm_from_the_tests_folder_runs_through_run(tmp_path):
    options = RunOptions(suite=str(_toy_suite(tmp_path)), out=tmp_path / "out", **SMALL, toy_bonus=1e6)
    outcome = pipeline.run_suite(options.to_config(tmp_path))
    results = load_run(outcome.run_dir)
    assert [arm["status"] for arm in results["arms"]] == ["ok", "ok"]
    assert results["config"]["toy_bonus"] == 1e6  # its knob: a suite field and a run option, recorded
    outputs = _outputs(outcome.run_dir)
    assert all(token == toy_units.TOY_TOKEN for row in outputs["toy-boost"] for token in row)
    assert any(token != toy_units.TOY_TOKEN for row in outputs["base"] for token in row)
    # nothing in the package knows the toys: their specs and registrations live in tests/toy_units.py
    package = Path(otterbench.__file__).parent
    names = ("toy-boost", "toy_bonus", "hf-generate", "hf_label")
    assert not [p for p in package.rglob("*.py") if any(name in p.read_text() for name in names)]


def test_a_generate_level_backend_runs_the_arms_it_accepts(tmp_path):
    hashes = {}
    for engine in ("eager", "hf-generate"):
        own = {"hf_label": 7} if engine == "hf-generate" else {}  # eager refuses another backend's option
        options = RunOptions(arms="base,toy-boost", engine=engine, out=tmp_path / engine, **own, **SMALL)
        options = options.with_values({"suite": str(_toy_suite(tmp_path))})
        outcome = pipeline.run_suite(options.to_config(tmp_path))
        results = load_run(outcome.run_dir)
        assert [arm["engine"] for arm in results["arms"]] == [engine, engine]
        hashes[engine] = [arm["token_ids_hash"] for arm in results["arms"]]
        base = results["arms"][0]
        assert base["latency"]["ttft_s"]["n"] == 2 and base["latency"]["tpot_s"]["n"] == 2 * 3  # 2 batches
        # the backend's own option reached it (BackendSettings) and its memory facts reached the record
        engine_memory = base["memory"].get("engine")
        assert (
            engine_memory == {"backend": "hf-generate", "kv_cache": "transformers DynamicCache", "label": 7}
        ) == (engine == "hf-generate")
    # transformers' own loop decides the same tokens as the harness's eager loop, for both arms (float32)
    assert hashes["hf-generate"] == hashes["eager"]


def test_an_arm_brings_its_own_loop_to_the_generate_level_backends_it_names(tmp_path):
    own = {"arms": "base,toy-own-loop", "reward_model": "tiny"}
    options = RunOptions(engine="hf-generate", out=tmp_path, **own, **SMALL)
    options = options.with_values({"suite": str(_toy_suite(tmp_path))})
    results = load_run(pipeline.run_suite(options.to_config(tmp_path)).run_dir)
    base, own = results["arms"]
    assert own["status"] == "ok" and own["engine"] == "hf-generate"
    assert own["token_ids_hash"] == base["token_ids_hash"]  # its loop decides greedily, as base does
    # the same arm under a backend it does not name is refused before anything loads
    args = ["run", "--arms", "base,toy-own-loop", "--reward-model", "tiny", "--out", str(tmp_path / "e")]
    result = CliRunner().invoke(app, [*args, "--device", "cpu", "--suite", str(_toy_suite(tmp_path))])
    assert result.exit_code == 2
    refused = (
        "error: --engine='eager' cannot run arm toy-own-loop: arm toy-own-loop runs only under hf-generate"
    )
    assert refused in result.output


def test_a_backend_refuses_an_arm_it_cannot_run_in_preflight(tmp_path):
    args = ["run", "--engine", "hf-generate", "--arms", "base,args-faithful", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--device", "cpu"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert lines == [
        "error: --engine='hf-generate' cannot run arm args-faithful: hf-generate decodes one base (or fused "
        "Otter) model with a per-step rule; this arm needs more"
    ]


def _otter_under_generate(tmp_path: Path) -> dict:
    options = RunOptions(arms="base,otter-args", engine="hf-generate", out=tmp_path, **SMALL)
    return load_run(pipeline.run_suite(options.to_config(tmp_path)).run_dir)  # load_run checks the schema


def test_non_disruption_under_a_generate_level_backend_is_judged_on_its_tokens(tmp_path):
    results = _otter_under_generate(tmp_path)
    assert [arm["status"] for arm in results["arms"]] == ["ok", "ok"]
    block = results["non_disruption"]
    # the fused Otter's greedy pass through the backend against the base arm's tokens from the same backend
    assert (block["measured"], block["backend"], block["judged_on"]) == (
        True,
        "hf-generate",
        "tokens+logprobs",
    )
    assert block["exact"] is None and block["max_abs_logit_diff"] is None  # never claimed without logits
    assert block["base_arm_token_ids_hash"] == results["arms"][0]["token_ids_hash"]
    assert block["greedy_tokens_identical"] and block["token_agreement"] == 1.0
    assert (block["rows_identical"], block["rows"]) == (3, 3)
    assert block["max_abs_logprob_diff"] < 1e-4  # float32: the widened reductions only reorder sums
    # bit-equal log-probabilities (as the fused layout gives where the reordering changes no sum) are exact
    exact = block["max_abs_logprob_diff"] == 0.0
    assert block["verdict"] == ("exact" if exact else "within_base_numerics")
    assert "judged on tokens+logprobs" in block["criterion"]
    # the base's own yardstick: a second base pass with its prompts regrouped (each alone)
    assert block["yardstick"]["changes"]["batch_composition"]["rows"] == 3
    assert "under hf-generate" in non_disruption_line(results)


def test_only_the_checks_passes_ask_a_generate_level_backend_for_logprobs(tmp_path, monkeypatch):
    decode, asked = toy_units.HFGenerateBackend.generate, []

    def record(backend, workload, choose=None, logprobs=False):
        asked.append((backend.arm.name, choose is not None, workload.batch_size, logprobs))
        return decode(backend, workload, choose, logprobs)

    monkeypatch.setattr(toy_units.HFGenerateBackend, "generate", record)
    block = _otter_under_generate(tmp_path)["non_disruption"]
    # the arms' own runs (the repeat, and what the session runs before it) never ask; the check's three passes
    # do: Otter's greedy pass, the base's reference (decoded once more: no repeat kept its logprobs) and its
    # regrouped yardstick (prompts alone)
    checks = sorted(call for call in asked if call[3])
    assert checks == [("base", False, 1, True), ("base", False, 2, True), ("otter-args", True, 2, True)]
    measured = [call[:3] for call in asked if not call[3]]
    assert {"base", "otter-args"} == {arm for arm, _, _ in measured}
    assert all(call[1:] == (False, 2) for call in measured)
    assert block["judged_on"] == "tokens+logprobs" and block["yardstick"]["max_abs_logprob_diff"] is not None


def test_a_disrupted_otter_under_a_generate_level_backend_is_found(tmp_path, monkeypatch):
    decode = toy_units.HFGenerateBackend.generate

    def flip_the_check_pass(backend, workload, choose=None, logprobs=False):
        out = decode(backend, workload, choose, logprobs)
        if backend.otter and choose is not None:  # Otter's original response, as a disrupted model gives it
            out.token_ids[1][2] += 1
        return out

    monkeypatch.setattr(toy_units.HFGenerateBackend, "generate", flip_the_check_pass)
    block = _otter_under_generate(tmp_path)["non_disruption"]
    assert block["verdict"] == "disrupted" and not block["greedy_tokens_identical"]
    assert block["token_agreement"] == (4 + 2 + 4) / 12 and block["rows_identical"] == 2


def test_the_default_layout_is_the_engines_first_and_another_is_refused(tmp_path):
    for engine, layout in (("eager", "packed"), ("compiled", "packed"), ("hf-generate", "fused")):
        config = RunOptions(engine=engine, out=tmp_path, **SMALL).to_config(tmp_path)
        assert config.insertion.layout == layout == backend_spec(engine).layouts[0]
    args = ["run", "--engine", "hf-generate", "--arms", "base,otter-args", "--layout", "packed"]
    result = CliRunner().invoke(app, [*args, "--device", "cpu", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "error: --engine='hf-generate' serves the Otter layout(s) fused, not 'packed'" in result.output


def test_a_backend_must_serve_known_layouts():
    with pytest.raises(ValueError, match="layouts"):
        register_backend(dataclasses.replace(toy_units.TOY_BACKEND, name="no-layouts", layouts=()))
    with pytest.raises(ValueError, match="'sparse'"):
        register_backend(dataclasses.replace(toy_units.TOY_BACKEND, name="odd", layouts=("sparse",)))
