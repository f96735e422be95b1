"""The three Otter layouts side by side: weights bytes and TPOT of base, split, fused and packed, interleaved.

    python scripts/layouts_cpu.py [--engines eager,compiled] [--hidden 1024 --layers 8 --heads 16 --ffn 2816]
        [--dtype float32] [--rounds 5] [--prompts 3] [--new-tokens 16] [--out docs/measurements/cpu-layouts.json]

One process holds one random Llama base (the project's tokenizer) and its three layouts (insert_otter, then
`to_fused` / `to_packed`, ratio 1/8, copy init as a run's). Each engine's arms are the run's own (`base` and
`otter-args` over each layout, `build_arm`), compiled before anything is timed (`warm_up_engine`); then every
round runs each arm once over the same workload (batch 1), so drift on a shared machine hits all alike. TPOT
is the median over rounds of each round's median step; weights bytes are the model's unique tensors
(`weights_bytes`); tokens are compared with the base arm's.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from otterbench.arms import build_arm
from otterbench.backends.step import warm_up_engine
from otterbench.models.build import make_causal_lm
from otterbench.models.tokenizer import load_tokenizer
from otterbench.otter import OtterSpec, count_inserted_parameters, insert_otter
from otterbench.run.session import pin_cpu_threads
from otterbench.run.suite import load_prompts, load_suite
from otterbench.trackers.latency import StepTimer
from otterbench.trackers.memory import weights_bytes
from otterbench.workload import build_workload

LAYOUTS = ("split", "fused", "packed")


def _models(args: argparse.Namespace) -> tuple[Any, dict[str, Any], int]:
    base = make_causal_lm(
        "llama",
        seed=0,
        vocab_size=len(load_tokenizer()),
        hidden_size=args.hidden,
        num_layers=args.layers,
        num_heads=args.heads,
        num_kv_heads=args.heads,
        intermediate_size=args.ffn,
    ).to(getattr(torch, args.dtype))
    split = insert_otter(base, OtterSpec.from_ratio(base.config, 0.125, signal="vocab")).eval()
    layouts = {"split": split, "fused": split.to_fused().eval(), "packed": split.to_packed().eval()}
    return base.eval(), layouts, count_inserted_parameters(split.dims, split.spec)


def _weights(base: Any, name: str, model: Any) -> int:
    return weights_bytes(base, model.inserted) if name == "split" else weights_bytes(model)


@torch.inference_mode()
def greedy_matches_base(base: Any, layouts: dict[str, Any], workload: Any) -> dict[str, bool]:
    """Whether each layout's own greedy decode (its original logits, eager) picks the base's tokens."""
    cpu = torch.device("cpu")
    reference = build_arm("base", SimpleNamespace(base=base)).run(workload, cpu).token_ids
    runs = {
        name: build_arm("base", SimpleNamespace(base=m)).run(workload, cpu) for name, m in layouts.items()
    }
    return {name: run.token_ids == reference for name, run in runs.items()}


def _measure(engine: str, base: Any, layouts: dict[str, Any], workload: Any, rounds: int) -> dict[str, Any]:
    cpu = torch.device("cpu")
    arms = {"base": build_arm("base", SimpleNamespace(base=base), engine=engine)}
    arms.update(
        {name: build_arm("otter-args", None, model, engine=engine) for name, model in layouts.items()}
    )
    compile_s = {name: warm_up_engine(arm, workload, cpu)["compile_s"] for name, arm in arms.items()}
    per_round: dict[str, list[float]] = {name: [] for name in arms}
    tokens: dict[str, Any] = {}
    for _ in range(rounds):
        for name, arm in arms.items():
            with StepTimer(cpu) as timer:
                output = arm.run(workload, cpu, timer)
            per_round[name].append(statistics.median(timer.record().tpot_s))
            tokens[name] = output.token_ids  # otter-args picks by its signal: compared across layouts
    return {
        name: {
            "engine": arms[name].engine.name,
            "compile_s": compile_s[name],
            "tpot_s_median": statistics.median(samples),
            "tpot_s_rounds": samples,
            "token_ids": tokens[name],
        }
        for name, samples in per_round.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="eager,compiled")
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--ffn", type=int, default=2816)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--prompts", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    pin_cpu_threads(args.threads)
    base, layouts, inserted = _models(args)
    suite = load_suite("safety")
    workload = build_workload(
        load_prompts(suite.prompts_path)[: args.prompts],
        load_tokenizer(),
        batch_size=1,
        max_new_tokens=args.new_tokens,
        knobs=suite.knobs,
    )
    element = torch.finfo(getattr(torch, args.dtype)).bits // 8
    weights = {"base": weights_bytes(base)} | {name: _weights(base, name, m) for name, m in layouts.items()}
    result: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {args.threads} pinned thread(s), shared",
        "torch": torch.__version__,
        "shape": vars(args) | {"out": str(args.out)},
        "inserted_parameters": inserted,
        "inserted_bytes": inserted * element,
        "weights_bytes": weights,
        "greedy_tokens_identical_to_base": greedy_matches_base(base, layouts, workload),
        "engines": {},
    }
    for engine in args.engines.split(","):
        result["engines"][engine] = _measure(engine, base, layouts, workload, args.rounds)
    print(_table(result))
    if args.out:
        for engine in result["engines"].values():
            split_tokens = engine["split"]["token_ids"]
            for name in LAYOUTS:
                engine[name]["otter_args_tokens_identical_to_split"] = (
                    engine[name]["token_ids"] == split_tokens
                )
            for entry in engine.values():
                del entry["token_ids"]
        args.out.write_text(json.dumps(result, indent=2) + "\n")


def _table(result: dict[str, Any]) -> str:
    weights, base_bytes = result["weights_bytes"], result["weights_bytes"]["base"]
    greedy = result["greedy_tokens_identical_to_base"]
    lines = [
        "| engine | arm | layout | weights MiB | extra MiB | extra / inserted | TPOT p50 ms | extra time | "
        "greedy = base | otter-args tokens = split's |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arms in result["engines"].values():
        base_tpot = arms["base"]["tpot_s_median"]
        for name, entry in arms.items():
            extra = weights[name] - base_bytes
            lines.append(
                f"| {entry['engine']} | {'base' if name == 'base' else 'otter-args'} | "
                f"{'-' if name == 'base' else name} | {weights[name] / 2**20:,.1f} | {extra / 2**20:,.1f} | "
                f"{extra / result['inserted_bytes']:.3f} | {1e3 * entry['tpot_s_median']:.2f} | "
                f"{100 * (entry['tpot_s_median'] / base_tpot - 1):+.1f}% | "
                f"{greedy.get(name, '-')} | "
                f"{'-' if name == 'base' else entry['token_ids'] == arms['split']['token_ids']} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
