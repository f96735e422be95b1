"""The embedded tiny profile: the shipped tokenizer, the seeded tiny models, and the one model-loading entry point."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from repo_scripts import load_script
from transformers import LlamaForSequenceClassification

from otterbench.models.build import make_causal_lm, make_config, make_reward_model
from otterbench.models.loading import load_model, load_model_set, model_fingerprint
from otterbench.models.roles import role_names
from otterbench.models.sources import ModelUnavailableError
from otterbench.models.tiny import TINY_SIZES, build_tiny_model, build_tiny_models
from otterbench.models.tokenizer import TOKENIZER_PATH, load_tokenizer

REPO = Path(__file__).resolve().parents[1]
TINY_PROFILES = {"tiny": {role: "tiny" for role in role_names()}}


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[key], sb[key]) for key in sa)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


def test_tokenizer_round_trips_text_it_never_saw(tokenizer):
    text = "Human: Zebras in Zürich eat 42 kiwis?\n\nAssistant: Naïve café — 3.5 km away."
    ids = tokenizer(text).input_ids
    assert ids[0] == tokenizer.bos_token_id == 1
    assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_tokenizer_sizes_and_special_ids(tokenizer):
    assert len(tokenizer) == TINY_SIZES["vocab_size"] == 4096
    assert (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id) == (0, 1, 2)
    assert TOKENIZER_PATH.stat().st_size < 1_000_000


def test_tokenizer_pads_on_the_left(tokenizer):
    batch = tokenizer(["Hi", "Hello there, how are you today?"], padding=True, return_tensors="pt")
    short_ids, short_mask = batch.input_ids[0], batch.attention_mask[0]
    pad_count = int((short_mask == 0).sum())
    assert pad_count > 0
    assert short_ids[:pad_count].tolist() == [0] * pad_count
    assert short_mask[pad_count:].all() and short_ids[pad_count] == 1
    assert batch.attention_mask[1].all()


def test_tokenizer_loads_offline_and_identically(tokenizer, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again = load_tokenizer()
    assert again.get_vocab() == tokenizer.get_vocab()
    assert again.padding_side == "left"


def test_shipped_tokenizer_matches_its_corpus(tokenizer):
    script = load_script("build_tokenizer")
    retrained = script.train_tokenizer(script.DATA_DIR / "corpus.txt")
    assert retrained.get_vocab() == tokenizer.backend_tokenizer.get_vocab()


def test_tiny_models_are_deterministic_for_a_seed():
    first, second = build_tiny_models(seed=0), build_tiny_models(seed=0)
    for role in role_names():
        assert _same_weights(getattr(first, role), getattr(second, role)), role
    assert not _same_weights(first.base, first.expert)  # each role has its own seed
    assert not _same_weights(first.expert, first.anti_expert)
    assert not _same_weights(first.base, build_tiny_model("base", seed=1))


def test_tiny_models_share_the_tokenizer(tokenizer):
    models = build_tiny_models()
    assert models.reward_model.config.num_labels == 1
    for role in role_names():
        config = getattr(models, role).config
        assert getattr(models, role).get_input_embeddings().num_embeddings == len(tokenizer), role
        assert (config.pad_token_id, config.bos_token_id, config.eos_token_id) == (0, 1, 2), role
    batch = tokenizer(["Human: hello\n\nAssistant:", "Hi"], padding=True, return_tensors="pt")
    with torch.no_grad():
        scores = models.reward_model(**batch).logits
    assert scores.shape == (2, 1)


def test_load_model_set_tiny_loads_only_what_is_needed():
    model_set = load_model_set("tiny", needs={"reward_model"}, profiles=TINY_PROFILES, dtype="bfloat16")
    assert model_set.expert is None and model_set.anti_expert is None
    assert model_set.sources == {"base": "tiny", "reward_model": "tiny"}
    assert model_set.dtype == "bfloat16" and model_set.base.dtype == torch.bfloat16
    assert model_set.tokenizer.padding_side == "left"
    expected = build_tiny_model("reward_model").to(torch.bfloat16)
    assert _same_weights(model_set.reward_model, expected)


def test_load_model_set_uses_the_profile_dtype_and_overrides(tmp_path):
    saved = tmp_path / "base"
    build_tiny_model("base", seed=3).save_pretrained(saved)
    load_tokenizer().save_pretrained(saved)
    profiles = {"tiny": {"base": "tiny", "dtype": "float16"}}
    model_set = load_model_set("tiny", needs=set(), profiles=profiles, overrides={"base": str(saved)})
    assert model_set.sources == {"base": str(saved)} and model_set.base.dtype == torch.float16
    assert _same_weights(model_set.base, build_tiny_model("base", seed=3).half())
    assert model_set.tokenizer.padding_side == "left" and model_set.tokenizer.pad_token_id == 0
    assert model_fingerprint(model_set.base) == model_fingerprint(build_tiny_model("base"))


@pytest.mark.parametrize("source", ["/nonexistent/otterbench-model", "otterbench-test/does-not-exist"])
@pytest.mark.parametrize("role", ["base", "reward_model"])
def test_missing_model_is_one_clear_line(source, role):
    with pytest.raises(ModelUnavailableError) as caught:
        load_model(source, role)
    message = str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert role in message and source in message and "--profile tiny" in message
    assert "\n" not in message


def test_missing_model_in_a_profile_names_the_role():
    profiles = {"real": {"base": "tiny", "expert": "otterbench-test/does-not-exist", "anti_expert": "tiny"}}
    with pytest.raises(ModelUnavailableError, match="expert model 'otterbench-test/does-not-exist'"):
        load_model_set("real", needs={"expert", "anti_expert"}, profiles=profiles)


def test_role_without_a_source_says_how_to_supply_it():
    with pytest.raises(ValueError, match="profile 'paper' names no expert model: pass one"):
        load_model_set("paper", needs={"expert"}, profiles={"paper": {"base": "tiny"}})


def test_reward_model_with_another_vocab_is_refused(tmp_path):
    make_reward_model(seed=0, vocab_size=512).save_pretrained(tmp_path / "rm")
    profiles = {"mixed": {"base": "tiny", "reward_model": str(tmp_path / "rm")}}
    with pytest.raises(ValueError) as caught:
        load_model_set("mixed", needs={"reward_model"}, profiles=profiles)
    assert str(caught.value) == (
        "ARGS needs the reward model to share the LLM's token ids: base vocab 4096, reward model vocab 512"
    )


def test_expert_with_another_vocab_is_refused(tmp_path):
    make_causal_lm("llama", seed=0, vocab_size=300).save_pretrained(tmp_path / "expert")
    profiles = {"mixed": {"base": "tiny", "expert": str(tmp_path / "expert"), "anti_expert": "tiny"}}
    with pytest.raises(ValueError, match="base vocab 4096, expert vocab 300"):
        load_model_set("mixed", needs={"expert", "anti_expert"}, profiles=profiles)


def test_reward_model_must_have_one_label(tmp_path):
    LlamaForSequenceClassification(make_config("llama", num_labels=2)).save_pretrained(tmp_path / "rm2")
    with pytest.raises(ValueError, match="has num_labels 2: ARGS needs a one-label reward model"):
        load_model(str(tmp_path / "rm2"), "reward_model")


def test_causal_lm_is_not_a_reward_model(tmp_path):
    make_causal_lm("llama", seed=0).save_pretrained(tmp_path / "lm")
    with pytest.raises(ValueError, match="is a LlamaForCausalLM .*not a reward model"):
        load_model(str(tmp_path / "lm"), "reward_model")


def test_unknown_profile_lists_the_known_ones():
    profiles = {"tiny": {"base": "tiny"}, "paper": {"base": "x"}}
    with pytest.raises(ValueError, match=r"unknown profile 'huge': known profiles are paper, tiny$"):
        load_model_set("huge", needs=set(), profiles=profiles)


def test_fingerprint_separates_architectures():
    base, reward_model = build_tiny_model("base"), build_tiny_model("reward_model")
    assert model_fingerprint(base) == model_fingerprint(
        build_tiny_model("expert")
    )  # same shape, other weights
    assert model_fingerprint(base) != model_fingerprint(reward_model)
    assert model_fingerprint(base) != model_fingerprint(make_causal_lm("llama", seed=0, vocab_size=4096))
    assert len(model_fingerprint(base)) == 12
