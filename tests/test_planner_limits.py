"""The planner's limits by hand: a one-layer Llama small enough to count every parameter and byte on paper.

Base: hidden d=8, 2 heads of hd=4 (2 kv heads), FFN m=16, vocab V=32, one layer, untied head.
  parameters P = V*d (embed 256) + q,k,v,o 4*64 + gate,up,down 3*128 + 2 norms 16 + final norm 8 + head 256
              = 1176; its Linear layers P_lin = 256 + 384 + 256 = 896.
Reward model: the same decoder with a one-label score head (8) instead of the vocabulary head: 928, P_lin 648.
Output heads (P_head, in P_lin): the base's vocabulary head 256, the score head 8; a forward reads its output at
the last position only where it says so, and there the head runs once: `rows*2*(P_lin - P_head) + 2*P_head`.
KV per token and sequence: 2*L*g*hd*b = 2*1*2*4*2 = 32 bytes in bf16. Otter: dx=4, gx=1 (hx=1), mx=8.
Workload: k=3, batch 1, context T=10, prompt P=4, bf16 (b=2).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from otterbench.arms.units.args import FAITHFUL_KV_ROWS_PER_CANDIDATE
from otterbench.plan.costs import plan_costs
from otterbench.plan.inputs import PlanInputs
from otterbench.plan.layouts import PLANNED_LAYOUTS
from otterbench.saving import saved_pct

B, T, P, K, BYTES = 1, 10, 4, 3, 2
KV = 32  # base and reward model, per token
KV_OTTER = 2 * 1 * 1 * 4 * BYTES  # the gx=1 extra kv head
BASE, RM, INSERTED = 1176, 928, 748


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("hand")
    config = {
        "model_type": "llama",
        "hidden_size": 8,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "intermediate_size": 16,
        "vocab_size": 32,
        "tie_word_embeddings": False,
    }
    (folder / "config.json").write_text(json.dumps(config))
    return str(folder)


def _plan(source: str, **changes):
    sizes = {"extra_hidden": 4, "extra_kv_heads": 1, "extra_ffn": 8}
    inputs = PlanInputs(base=source, k=K, context=T, prompt_length=P, dtype="bfloat16", **sizes)
    return plan_costs(dataclasses.replace(inputs, **changes))


def test_decode_bytes_per_step_by_hand(source: str) -> None:
    plan = _plan(source)
    # base: its weights once, its cache read at T
    assert plan.arm("base").bytes_per_step == BASE * BYTES + T * KV == 2672
    # faithful: + the reward model's weights, and 5 rows moved per candidate (read k for attention, the
    # re-expansion's gather read k + write k and copy back read k + write k) at T
    assert FAITHFUL_KV_ROWS_PER_CANDIDATE == 5
    faithful = (BASE + RM) * BYTES + T * (KV + 5 * K * KV)
    assert plan.arm("args-faithful").bytes_per_step == faithful == 9328
    # optimized: one shared reward-model row read at T, the k candidates' KV written once (transient)
    assert plan.arm("args-optimized").bytes_per_step == (BASE + RM) * BYTES + T * (KV + KV) + K * KV == 4944
    # otter, split: the base and the inserted parameters beside it, plus the extra kv head's cache
    assert plan.arm("otter-args").bytes_per_step == (BASE + INSERTED) * BYTES + T * (KV + KV_OTTER) == 4328


def test_args_vllm_recomputes_what_whole_blocks_leave_by_hand(source: str) -> None:
    # blocks of 4 tokens: each request recomputes 1..4 tokens past the cached blocks, 2.5 on average; the
    # policy's request reads its T-token prefix once, the reward model's k requests each read theirs
    plan = _plan(source, vllm_block_size=4)
    tail = 2.5
    # rows x (2 (P_lin - P_head) + 4 L h hd T), and each request's head once, at its last position
    policy_flops = tail * (2 * (896 - 256) + 4 * 1 * 2 * 4 * T) + 2 * 256
    reward_flops = K * tail * (2 * (648 - 8) + 4 * 1 * 2 * 4 * T) + K * 2 * 8
    assert plan.arm("args-vllm").flops_per_token == policy_flops + reward_flops == 16560
    rewritten = round((tail - 1) * KV) + round(K * tail * KV)  # the recomputed rows' KV, written each step
    assert plan.arm("args-vllm").bytes_per_step == (BASE + RM) * BYTES + T * (KV + K * KV) + rewritten == 5776
    # blocks of one token recompute nothing: the same FLOPs as args-optimized, which reads the shared prefix
    # once where vLLM's k requests read it k times
    one = _plan(source, vllm_block_size=1)
    optimized, vllm = one.arm("args-optimized"), one.arm("args-vllm")
    assert vllm.flops_per_token == optimized.flops_per_token
    assert vllm.bytes_per_step - optimized.bytes_per_step == T * (K - 1) * KV == 640
    assert vllm.prefill_bytes == optimized.prefill_bytes  # one prefill per engine: blocks serve the step
    assert "blocks of 4 tokens" in " ".join(plan.notes)
    # a block longer than the context: no block is full yet, every request recomputes all T tokens
    whole = _plan(source, vllm_block_size=32).arm("args-vllm")
    policy_whole = T * (2 * 640 + 4 * 1 * 2 * 4 * T) + 2 * 256
    assert whole.flops_per_token == policy_whole + K * T * (2 * 640 + 4 * 1 * 2 * 4 * T) + K * 2 * 8


def test_decode_limit_is_the_bytes_saving_at_batch_one(source: str) -> None:
    saving = {s.separate_arm: s for s in _plan(source).savings}
    # 1 - (4328 - 2672) / (9328 - 2672): every arm moving its bytes at the same efficiency
    assert saving["args-faithful"].time_roofline_pct == pytest.approx(100 * (1 - 1656 / 6656))
    assert saving["args-optimized"].time_roofline_pct == pytest.approx(100 * (1 - 1656 / 2272))
    assert saved_pct(2672, 9328, 4328) == saving["args-faithful"].time_bytes_pct


def test_prefill_is_predicted_apart_from_decode(source: str) -> None:
    plan = _plan(source)
    # P tokens x (2 (P_lin - P_head) + 2 L h hd P), the head once at the last position (logits_to_keep=1)
    base_flops = P * (2 * (896 - 256) + 2 * 1 * 2 * 4 * P) + 2 * 256
    assert plan.arm("base").prefill_flops == base_flops == 5888
    assert plan.arm("base").prefill_bytes == BASE * BYTES + P * KV == 2480  # weights once + the KV written
    # faithful prefills the prompt k times through the reward model (one batched forward: weights once)
    faithful_flops = base_flops + K * (P * (2 * (648 - 8) + 2 * 1 * 2 * 4 * P) + 2 * 8)
    assert plan.arm("args-faithful").prefill_flops == faithful_flops == 22064
    assert plan.arm("args-faithful").prefill_bytes == (BASE + RM) * BYTES + P * (KV + K * KV) == 4720
    otter = plan.arm("otter-args")
    assert otter.prefill_bytes == (BASE + INSERTED) * BYTES + P * (KV + KV_OTTER) == 4040
    saving = {s.separate_arm: s for s in plan.savings}["args-faithful"]
    # batch 1, 4 tokens: memory-bound at the default ridge, so the limit is the bytes saving
    assert saving.prefill_pct == pytest.approx(100 * (1 - (4040 - 2480) / (4720 - 2480)))
    # a ridge of 1 FLOP/byte makes every prefill compute-bound: the limit is the FLOPs saving
    compute = {s.separate_arm: s for s in _plan(source, ridge_flops_per_byte=1.0).savings}["args-faithful"]
    assert compute.prefill_pct == pytest.approx(100 * (1 - (otter.prefill_flops - 5888) / (22064 - 5888)))


def test_output_heads_run_where_an_output_is_read(source: str) -> None:
    from otterbench.plan.shapes import model_shape

    assert model_shape(source, "causal-lm").head_parameters == 256  # V x d
    assert model_shape(source, "reward").head_parameters == 8  # one score
    plan = _plan(source, task="dexperts")
    # dexperts-faithful runs uncached forwards that compute logits at every position, as its reference does:
    # each token re-runs the T-token sequence through three models, 2 P_lin + 2 L h hd T per position
    assert plan.arm("dexperts-faithful").flops_per_token == 3 * T * (2 * 896 + 2 * 1 * 2 * 4 * T) == 58560
    assert plan.arm("dexperts-faithful").prefill_flops == 3 * P * (2 * 896 + 2 * 1 * 2 * 4 * P) == 22272
    # dexperts-cached prefills with logits_to_keep=1: the vocabulary head once per model
    assert plan.arm("dexperts-cached").prefill_flops == 3 * (P * (2 * 640 + 2 * 1 * 2 * 4 * P) + 2 * 256)


def test_each_layout_counts_what_it_stores(source: str) -> None:
    split, fused = _plan(source, layout="split"), _plan(source, layout="fused")
    assert set(PLANNED_LAYOUTS) >= {"split", "fused"}
    assert split.stored_extra_parameters["split"] == split.inserted_parameters == INSERTED
    assert split.stored_extra_parameters["fused"] == split.fused_extra_parameters  # zero blocks included
    # fused: the widened checkpoint runs instead of the base: 3 kv heads of the widened model at T
    widened = BASE + split.fused_extra_parameters
    assert fused.arm("otter-args").bytes_per_step == widened * BYTES + T * 2 * 1 * 3 * 4 * BYTES
    assert fused.arm("args-faithful").bytes_per_step == split.arm("args-faithful").bytes_per_step
    limit = {s.separate_arm: s.time_roofline_pct for s in fused.savings}["args-faithful"]
    stored_zeros = fused.arm("otter-args").bytes_per_step - split.arm("otter-args").bytes_per_step
    assert stored_zeros > 0 and limit == pytest.approx(100 * (1 - (1656 + stored_zeros) / 6656))


def test_a_layout_that_cannot_hold_the_insertion_is_refused_in_one_line(source: str) -> None:
    from otterbench.plan.shapes import PlanError

    # hidden 8+3 over 2+1 heads: no fused or packed checkpoint (transformers refuses it); split still plans it
    assert "split" in _plan(source, extra_hidden=3).stored_extra_parameters
    assert {"fused", "packed"}.isdisjoint(
        _plan(source, extra_hidden=3, layout="split").stored_extra_parameters
    )
    for layout in ("fused", "packed"):
        with pytest.raises(PlanError, match=f"{layout} layout cannot hold.*or --layout split"):
            _plan(source, extra_hidden=3, layout=layout)


def test_a_measured_saving_above_its_limit_is_said_with_the_efficiencies() -> None:
    from otterbench.results.summary_efficiency import limit_notes

    def arm(name: str, extra: float) -> dict:
        return {"name": name, "efficiency": {"extra_efficiency": extra}}

    by_layout = {"split": {"space_pct": 86.0, "time_roofline_pct": 86.3, "prefill_pct": 85.0}}
    saving = {
        "separate_arm": "args-faithful",
        "otter_arm": "otter-args",
        "extra_decode_time_saved_pct": 83.9,
        "predicted": {"time_roofline_pct": 74.2, "by_layout": by_layout},
    }
    results = {"arms": [arm("args-faithful", 0.52), arm("otter-args", 0.72)], "savings": [saving]}
    notes = limit_notes(results)
    assert notes[0] == "args-faithful limits by layout: split decode 86.3%, prefill 85.0%, space 86.0%"
    assert "above its limit 74.2%" in notes[1]
    assert "(extra efficiency 52.0%) than otter-args (extra efficiency 72.0%)" in notes[1]
    saving["extra_decode_time_saved_pct"] = 70.0
    assert len(limit_notes(results)) == 1  # below the limit: nothing to explain
    # a file written before extra_efficiency: its extra MBU (what its limits were priced on) is shown
    results["arms"] = [{"name": "args-faithful", "efficiency": {"extra_mbu": 0.5}}, arm("otter-args", 0.7)]
    saving["extra_decode_time_saved_pct"] = 83.9
    assert "(extra efficiency 50.0%)" in limit_notes(results)[1]


def test_prefill_and_space_above_their_limits_and_a_negative_prefill_are_said() -> None:
    from otterbench.results.summary_efficiency import limit_notes

    predicted = {"time_roofline_pct": 95.3, "prefill_pct": 69.8, "space_pct": 86.6}
    saving = {
        "separate_arm": "args-optimized",
        "otter_arm": "otter-args",
        "extra_decode_time_saved_pct": 80.3,  # below its limit: no line
        "extra_prefill_time_saved_pct": 78.5,
        "extra_space_saved_pct": 94.1,
        "predicted": predicted,
    }
    notes = limit_notes({"arms": [], "savings": [saving]})
    assert len(notes) == 2
    assert notes[0].startswith("args-optimized: the measured prefill saving 78.5% is above its limit 69.8%")
    assert notes[1].startswith("args-optimized: the measured space saving 94.1% is above its limit 86.6%")
    saving.update(extra_prefill_time_saved_pct=-422.6, extra_space_saved_pct=80.0, predicted={})
    (note,) = limit_notes({"arms": [], "savings": [saving]})
    assert note.startswith("args-optimized, prefill: below 0%: Otter's extra exceeded the separate arm's")


def test_the_run_records_limits_efficiency_and_overhead(tmp_path: Path) -> None:
    from otterbench.results.files import load_run
    from otterbench.run import pipeline as runner
    from otterbench.run.config import resolve_run_config

    small = {"num_prompts": 2, "max_new_tokens": 3, "batch_size": 1, "repeats": 1, "warmup": 0, "k": 3}
    config = resolve_run_config(
        "safety", out_dir=tmp_path, suite_overrides=small, isolation="inline", device="cpu"
    )
    results = load_run(runner.run_suite(config).run_dir)  # validated against the schema
    environment = results["environment"]
    peak = environment["memory_bandwidth"]["peak_bytes_per_s"]
    peak_flops = environment["compute_peak"]["peak_flops_per_s"]
    ridge = peak_flops / peak  # the limits are priced at this device's ridge point, measured in the run
    for arm in results["arms"]:
        eff = arm["efficiency"]
        tpot = arm["latency"]["tpot_s"]["median"]
        assert eff["roofline_bytes"] == pytest.approx(
            max(eff["flops_per_step"] / ridge, eff["bytes_per_step"])
        )
        assert eff["bound"] == (
            "compute" if eff["flops_per_step"] / eff["bytes_per_step"] >= ridge else "memory"
        )
        assert eff["overhead_s_per_step"] == pytest.approx(tpot - eff["roofline_bytes"] / peak)
        assert eff["mfu"] == pytest.approx(eff["flops_per_step"] / tpot / peak_flops)
        assert eff["prefill_bytes"] > 0 and eff["prompt_length"] >= 1
    arms = {arm["name"]: arm for arm in results["arms"]}
    base = results["arms"][0]
    for arm in results["arms"][1:]:  # the extra roofline work over the extra time, against the peak
        extra_time = arm["latency"]["tpot_s"]["median"] - base["latency"]["tpot_s"]["median"]
        extra_work = arm["efficiency"]["roofline_bytes"] - base["efficiency"]["roofline_bytes"]
        expected = extra_work / extra_time / peak if extra_time > 0 else None
        assert arm["efficiency"]["extra_efficiency"] == (pytest.approx(expected) if expected else None)
    for saving in results["savings"]:  # above its limit exactly when the separate arm's extra work ran slower
        separate, otter = (
            arms[saving[key]]["efficiency"]["extra_efficiency"] for key in ("separate_arm", "otter_arm")
        )
        if separate is not None and otter is not None:
            above = saving["extra_decode_time_saved_pct"] > saving["predicted"]["time_roofline_pct"]
            assert above == (separate < otter)
    for saving in results["savings"]:
        predicted = saving["predicted"]
        layout = results["otter"]["layout"]  # the run's own layout, priced beside the others
        assert predicted["layout"] == layout and set(predicted["by_layout"]) == {"split", "fused", "packed"}
        assert predicted["by_layout"][layout]["time_roofline_pct"] == predicted["time_roofline_pct"]
        # the fused layout stores zero blocks and reads them every step: a lower limit than split's
        assert predicted["by_layout"]["fused"]["space_pct"] < predicted["by_layout"]["split"]["space_pct"]
        assert "extra_prefill_time_saved_pct" in saving
