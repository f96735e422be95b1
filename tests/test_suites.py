"""Suites: the bundled TOML files load, and every bad input gives its one-line error."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from otterbench.arms.registry import arm_names, knobs, model_roles
from otterbench.run.config import resolve_run_config
from otterbench.run.suite import (
    SuiteError,
    list_suites,
    load_prompts,
    load_suite,
    suites_dir,
)

VALID = {
    "description": "a test suite",
    "task": "args",
    "arms": ["base", "args-faithful", "otter-args"],
    "prompts": "prompts.jsonl",
    "max_new_tokens": 4,
    "batch_size": 2,
    "seed": 0,
    "k": 3,
}
VALID_PROFILES = {"tiny": {"base": "tiny", "reward_model": "tiny"}}


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return json.dumps(value)  # strings, ints and floats read the same in TOML


def _write_suite(folder: Path, changes: dict | None = None, drop: str | None = None, profiles=None) -> Path:
    values = {**VALID, **(changes or {})}
    values.pop(drop, None)
    lines = [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    for name, table in (VALID_PROFILES if profiles is None else profiles).items():
        lines += [f"[profiles.{name}]", *(f"{key} = {_toml_value(value)}" for key, value in table.items())]
    path = folder / "custom.toml"
    path.write_text("\n".join(lines) + "\n")
    (folder / "prompts.jsonl").write_text('{"prompt": "Human: hi\\n\\nAssistant:"}\n{"prompt": "Hello"}\n')
    return path


def _error(path: Path) -> str:
    with pytest.raises(SuiteError) as caught:
        load_suite(str(path))
    message = str(caught.value)
    assert "\n" not in message, message
    return message


def test_safety_suite_loads_as_specified():
    suite = load_suite("safety")
    arms = ("base", "args-faithful", "args-optimized", "args-token", "otter-args")
    assert suite.task == "args" and suite.arms == arms
    assert (suite.k, suite.weight, suite.max_new_tokens, suite.batch_size) == (10, 1.0, 16, 8)
    assert (suite.num_prompts, suite.seed, suite.repeats, suite.warmup, suite.dtype) == (
        32,
        0,
        5,
        1,
        "float32",
    )
    assert suite.prompts_path == suites_dir() / "prompts" / "safety.jsonl"
    assert suite.profiles["paper"]["reward_model"] == "argsearch/llama-7b-rm-float32"
    assert suite.profile_dtype("paper") == "bfloat16" and suite.profile_dtype("tiny") == "float32"
    assert suite.needed_roles() == {"base", "reward_model", "token_reward_model"}
    prompts = load_prompts(suite.prompts_path)
    assert len(prompts) >= 40 and all(
        p.startswith("Human: ") and p.endswith("\n\nAssistant:") for p in prompts
    )
    assert len(load_prompts(suite.prompts_path, suite.num_prompts)) == 32


def test_detox_suite_loads_as_specified():
    suite = load_suite("detox")
    assert suite.task == "dexperts" and suite.alpha == 2.0
    assert suite.arms == ("base", "dexperts-faithful", "dexperts-cached", "otter-dexperts")
    assert suite.needed_roles() == {"base", "expert", "anti_expert"}
    assert "expert" not in suite.profiles["paper"]  # the user supplies the paper profile's experts
    assert len(load_prompts(suite.prompts_path)) >= 32


def test_accel_suite_loads_as_specified():
    suite = load_suite("accel")
    assert suite.task == "accel" and suite.arms == ("base", "spec-separate", "otter-spec")
    assert suite.needed_roles() == {"base", "draft"} and suite.draft_length >= 1
    assert suite.batch_size == 1  # the speculative arms decode row by row; base is matched
    assert len(load_prompts(suite.prompts_path)) >= 32  # enough for distill's train / held-out split


def test_to_dict_is_json_ready_and_complete():
    suite = load_suite("safety")
    saved = json.loads(json.dumps(suite.to_dict()))
    assert saved["arms"] == list(suite.arms) and saved["prompts_path"] == str(suite.prompts_path)
    fields = {f.name for f in dataclasses.fields(suite)} - {"knobs"}
    assert fields | set(knobs()) == set(saved)  # every field, the task knobs flat beside them


def test_list_suites_and_env_override(tmp_path, monkeypatch):
    assert [name for name, _ in list_suites()] == ["accel", "detox", "safety"]
    assert all(description and "\n" not in description for _, description in list_suites())
    _write_suite(tmp_path)
    monkeypatch.setenv("OTTERBENCH_SUITES_DIR", str(tmp_path))
    assert list_suites() == [("custom", "a test suite")]
    assert load_suite("custom").prompts_path == tmp_path / "prompts.jsonl"


def test_unknown_suite_lists_known_ones():
    with pytest.raises(SuiteError, match=r"unknown suite 'nope': known suites are accel, detox, safety"):
        load_suite("nope")


def test_model_roles():
    assert model_roles(["base", "otter-args"]) == {"base"}
    assert model_roles(["args-optimized", "dexperts-cached"]) == {
        "base",
        "reward_model",
        "expert",
        "anti_expert",
    }


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"arms": ["base", "args-fast"]},
            "arms = 'args-fast' is not a known arm: use names from " + ", ".join(arm_names()),
        ),
        ({"arms": ["base", "dexperts-cached"]}, "arms = 'dexperts-cached' belongs to another task"),
        ({"arms": []}, "arms = [] is empty"),
        ({"arms": ["base", "base"]}, "repeats an arm"),
        ({"k": 0}, "k = 0 is too small: use an integer >= 1"),
        ({"max_new_tokens": 0}, "max_new_tokens = 0 is too small"),
        ({"batch_size": -2}, "batch_size = -2 is too small"),
        ({"repeats": 0}, "repeats = 0 is too small"),
        ({"warmup": -1}, "warmup = -1 is negative"),
        ({"num_prompts": 0}, "num_prompts = 0 is too small"),
        ({"dtype": "float64"}, "dtype = 'float64' is not supported: use one of float32, bfloat16, float16"),
        ({"task": "summarise"}, "task = 'summarise' is unknown: use one of args, dexperts"),
        ({"k": "10"}, "k = '10' has type str: write an integer"),
        ({"k": True}, "k = True has type bool: write an integer"),
        ({"arms": "base"}, "arms = 'base' has type str: write a list"),
        ({"arms": ["base", 3]}, "arms = 3 has type int: write a string"),
        ({"topk": 5}, "unknown key 'topk'"),
        ({"default_profile": "huge"}, "default_profile = 'huge' is not a profile here: known are tiny"),
    ],
)
def test_bad_values_give_one_line_naming_field_and_value(tmp_path, changes, expected):
    assert expected in _error(_write_suite(tmp_path, changes))


def test_weight_accepts_an_integer(tmp_path):
    assert load_suite(str(_write_suite(tmp_path, {"weight": 2}))).weight == 2.0


@pytest.mark.parametrize(
    "key", ["task", "arms", "prompts", "max_new_tokens", "batch_size", "seed", "profiles"]
)
def test_missing_required_key(tmp_path, key):
    path = _write_suite(tmp_path, drop=key, profiles={} if key == "profiles" else None)
    assert f"required key {key!r} is missing" in _error(path)


@pytest.mark.parametrize(
    ("profiles", "expected"),
    [
        ({"tiny": {"base": "tiny", "critic": "x"}}, "profiles.tiny.critic = 'x' is not a profile key"),
        ({"tiny": {"base": "tiny", "dtype": "int8"}}, "profiles.tiny.dtype = 'int8' is not supported"),
        ({"tiny": {"base": ""}}, "profiles.tiny.base = '' must be a non-empty string"),
    ],
)
def test_bad_profiles(tmp_path, profiles, expected):
    assert expected in _error(_write_suite(tmp_path, profiles=profiles))


def test_malformed_toml_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('task = "args"\narms = [\n')
    message = _error(path)
    assert str(path) in message and "not valid TOML" in message


def test_replace_revalidates():
    with pytest.raises(SuiteError, match="k = 0"):
        dataclasses.replace(load_suite("safety"), k=0)


def test_prompts_skip_blank_lines_and_honour_the_limit(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "one"}\n\n   \n{"prompt": "two"}\n{"prompt": "three"}\n')
    assert load_prompts(path) == ["one", "two", "three"]
    assert load_prompts(path, limit=2) == ["one", "two"]
    with pytest.raises(SuiteError, match="num_prompts = 4 but the file holds 3"):
        load_prompts(path, limit=4)


@pytest.mark.parametrize(
    ("third_line", "expected"),
    [
        ('{"prompt": "unterminated}', "not valid JSON"),
        ('{"text": "x"}', 'needs a non-empty string field "prompt"'),
    ],
)
def test_malformed_prompt_line_reports_its_number(tmp_path, third_line, expected):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "one"}\n\n' + third_line + "\n")
    with pytest.raises(SuiteError) as caught:
        load_prompts(path)
    assert str(caught.value).startswith(f"{path}:3: {expected}") and "\n" not in str(caught.value)


def test_empty_prompts_file_errors(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")
    with pytest.raises(SuiteError, match="has no prompts"):
        load_prompts(path)
    with pytest.raises(SuiteError, match="cannot read the prompts file"):
        load_prompts(tmp_path / "missing.jsonl")


def test_ci_preset_sets_the_run_length_and_the_command_line_wins(tmp_path):
    from otterbench.run.config import RunInputError, resolve_run_config

    for name in ("safety", "detox", "accel"):  # every bundled suite has the gate's run length
        assert load_suite(name).preset_values("ci") == {"repeats": 40, "warmup": 2}
    config = resolve_run_config("safety", out_dir=tmp_path, preset="ci")
    assert (config.repeats, config.warmup) == (40, 2)
    explicit = resolve_run_config("safety", out_dir=tmp_path, preset="ci", suite_overrides={"repeats": 7})
    assert (explicit.repeats, explicit.warmup) == (7, 2)
    with pytest.raises(SuiteError, match="presets = 'nightly' is not a preset of this suite: known are ci"):
        resolve_run_config("safety", out_dir=tmp_path, preset="nightly")
    assert issubclass(SuiteError, ValueError) and issubclass(RunInputError, ValueError)  # both exit 2


def test_bad_preset_values_are_refused(tmp_path):
    path = _write_suite(tmp_path)
    path.write_text(path.read_text() + "[presets.ci]\nrepeats = 0\n")
    assert "presets.ci.repeats = 0 must be an integer >= 1" in _error(path)
    path.write_text(path.read_text().replace("repeats = 0", "batch_size = 4"))
    assert "presets.ci.batch_size = 4 is not a preset key" in _error(path)


def test_a_folder_named_like_a_suite_does_not_hide_the_bundled_suite(tmp_path, monkeypatch) -> None:
    """`--suite safety` from a folder holding a `safety/` directory (an earlier run's --out) loads the suite."""
    (tmp_path / "safety").mkdir()
    monkeypatch.chdir(tmp_path)
    assert load_suite("safety").name == "safety"


def test_a_profile_without_a_suite_arms_model_skips_that_arm_and_says_how_to_run_it(tmp_path):
    # the paper profile names no token-level reward model: args-token is left out, not the run refused
    config = resolve_run_config("safety", out_dir=tmp_path, profile="paper")
    assert config.arms == ("base", "args-faithful", "args-optimized", "otter-args")
    assert config.skipped_arms == (
        "args-token not run: profile 'paper' names no token_reward_model (pass --token-reward-model "
        "ID_OR_PATH to run it)",
    )
    assert config.to_dict()["skipped_arms"] == list(config.skipped_arms)
    given = resolve_run_config(
        "safety", out_dir=tmp_path, profile="paper", overrides={"token_reward_model": "tiny"}
    )
    assert "args-token" in given.arms and given.skipped_arms == ()
    tiny = resolve_run_config("safety", out_dir=tmp_path)  # the tiny profile names every model
    assert "args-token" in tiny.arms and tiny.skipped_arms == ()
