"""TPOT of base, args-faithful and args-optimized side by side, interleaved, per dtype and engine.

    python scripts/args_bench.py [--layers 8 --hidden 1024 --heads 16 --kv-heads 16 --ffn 2816]
        [--dtypes float32,bfloat16] [--engines eager,compiled] [--prompts 2 --batch-size 1 --new-tokens 12]
        [--rounds 3] [--device cpu] [--no-cudnn-sdpa] [--out docs/measurements/cpu-args-optimized.json]

The LLM and the reward model are seeded random Llamas of the given shape sharing the embedded tokenizer;
the prompts are the safety suite's (a seeded subset). For each (dtype, engine) cell the three arms are built,
compiled (the compiled engine: one unmeasured run each), then run `--rounds` times in rotating order, each
run under a StepTimer; an arm's TPOT is the median over rounds of each round's median step time. The
script also checks that args-optimized picked args-faithful's tokens (exact in float32; bf16 reported).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from otterbench.arms import build_arm
from otterbench.backends.step import warm_up_engine
from otterbench.env import resolve_device
from otterbench.models.build import make_causal_lm, make_reward_model
from otterbench.models.tokenizer import load_tokenizer
from otterbench.run.session import pin_cpu_threads
from otterbench.run.suite import load_prompts, load_suite
from otterbench.trackers.latency import StepTimer
from otterbench.workload import Workload, build_workload

ARMS = ("base", "args-faithful", "args-optimized")


def build_models(args: argparse.Namespace, dtype: torch.dtype, device: torch.device) -> SimpleNamespace:
    """The LLM and a reward model of the same shape, seeded, in `dtype` on `device`."""
    sizes = dict(
        vocab_size=len(load_tokenizer()),
        hidden_size=args.hidden,
        num_layers=args.layers,
        num_heads=args.heads,
        num_kv_heads=args.kv_heads,
        intermediate_size=args.ffn,
    )
    with torch.device(device):  # initialised where they run: a 7B pair is not built on the host first
        llm = make_causal_lm(seed=3, **sizes).to(dtype)
        reward_model = make_reward_model(seed=4, **sizes).to(dtype)
    return SimpleNamespace(base=llm, reward_model=reward_model)


def build_bench_workload(args: argparse.Namespace) -> Workload:
    suite = load_suite("safety")
    return build_workload(
        load_prompts(suite.prompts_path),
        load_tokenizer(),
        batch_size=args.batch_size,
        max_new_tokens=args.new_tokens,
        knobs=suite.knobs,
        num_prompts=args.prompts,
        seed=suite.seed,
    )


def measure_cell(models: Any, workload: Workload, engine: str, rounds: int, device: torch.device) -> dict:
    """Build, compile and time the three arms interleaved; their TPOT/TTFT medians and tokens."""
    arms = {name: build_arm(name, models, engine=engine) for name in ARMS}
    compile_s = {name: warm_up_engine(arm, workload, device)["compile_s"] for name, arm in arms.items()}
    engines = {name: arm.engine.name for name, arm in arms.items()}
    tpot: dict[str, list[float]] = {name: [] for name in ARMS}
    ttft: dict[str, list[float]] = {name: [] for name in ARMS}
    tokens: dict[str, list[list[int]]] = {}
    for round_index in range(rounds):
        order = ARMS[round_index % len(ARMS) :] + ARMS[: round_index % len(ARMS)]
        for name in order:
            with StepTimer(device) as timer:
                tokens[name] = arms[name].run(workload, device, timer).token_ids
            record = timer.record()
            tpot[name].append(statistics.median(record.tpot_s))
            ttft[name].append(statistics.median(record.ttft_s))
    same = sum(
        a == b for f, o in zip(tokens["args-faithful"], tokens["args-optimized"]) for a, b in zip(f, o)
    )
    total = sum(len(row) for row in tokens["args-faithful"])
    return {
        "engine_per_arm": engines,
        "compile_s": compile_s,
        "tpot_ms": {name: 1e3 * statistics.median(values) for name, values in tpot.items()},
        "tpot_ms_per_round": {name: [1e3 * v for v in values] for name, values in tpot.items()},
        "ttft_ms": {name: 1e3 * statistics.median(values) for name, values in ttft.items()},
        # paired within a round (seconds apart), so slow drifts of the machine load cancel
        "optimized_over_faithful_per_round": [
            o / f for o, f in zip(tpot["args-optimized"], tpot["args-faithful"], strict=True)
        ],
        "optimized_tokens_equal_faithful": f"{same}/{total}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--kv-heads", type=int, default=16)
    parser.add_argument("--ffn", type=int, default=2816)
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--engines", default="eager,compiled")
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--new-tokens", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="CPU: torch threads, pinned (as `run` does)")
    parser.add_argument("--no-cudnn-sdpa", action="store_true", help="CUDA: disable cuDNN attention")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args()
    device = resolve_device(args.device)
    if device.type == "cpu":
        pin_cpu_threads(args.threads)
    if args.no_cudnn_sdpa:
        torch.backends.cuda.enable_cudnn_sdp(False)
    workload = build_bench_workload(args)
    cells = []
    for dtype_name in args.dtypes.split(","):
        models = build_models(args, getattr(torch, dtype_name), device)
        for engine in args.engines.split(","):
            start = time.perf_counter()
            cell = {
                "dtype": dtype_name,
                "engine": engine,
                **measure_cell(models, workload, engine, args.rounds, device),
            }
            cell["wall_s"] = time.perf_counter() - start
            cells.append(cell)
            print_cell(cell)
    result = {
        "command": "python " + " ".join(sys.argv),
        "device": device_name(device),
        "torch": torch.__version__,
        "shape": {k: getattr(args, k) for k in ("layers", "hidden", "heads", "kv_heads", "ffn")},
        "workload": {
            "prompts": workload.num_prompts,
            "prompt_tokens": [len(p) for p in workload.prompt_ids],
            "batch_size": workload.batch_size,
            "new_tokens": workload.max_new_tokens,
            "k": workload.k,
        },
        "cells": cells,
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or 'cpu'}, {torch.get_num_threads()} torch thread(s)"


def print_cell(cell: dict) -> None:
    tpot, ttft = cell["tpot_ms"], cell["ttft_ms"]
    ratio = tpot["args-optimized"] / tpot["args-faithful"]
    paired = statistics.median(cell["optimized_over_faithful_per_round"])
    print(
        f"{cell['dtype']:>8} {cell['engine']:>8} | TPOT ms base {tpot['base']:8.2f}  faithful "
        f"{tpot['args-faithful']:8.2f}  optimized {tpot['args-optimized']:8.2f}  (opt/faithful {ratio:.3f}, paired {paired:.3f}) | "
        f"TTFT ms {ttft['base']:.1f} / {ttft['args-faithful']:.1f} / {ttft['args-optimized']:.1f} | "
        f"same tokens {cell['optimized_tokens_equal_faithful']} | {cell['wall_s']:.0f} s",
        flush=True,
    )


if __name__ == "__main__":
    main()
