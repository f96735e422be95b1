"""Build and save a real-architecture Llama pair (LLM + one-label reward model, random weights) for GPU checks.

    python scripts/gpu_pair.py OUT_DIR [--hidden 2048 --layers 16 --heads 16 --kv-heads 4 --ffn 5632]
        [--models llm,rm,expert]

Both share the embedded tokenizer (saved beside each), so `otterbench run --base OUT_DIR/llm --reward-model
OUT_DIR/rm` loads them by path exactly as the paper profile loads downloaded checkpoints. `expert` is a
third causal LM (its own seed) for the detox suite's DExperts arms.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from otterbench.models.build import make_causal_lm, make_reward_model
from otterbench.models.tokenizer import load_tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--kv-heads", type=int, default=4)
    parser.add_argument("--ffn", type=int, default=5632)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument(
        "--models", default="llm,rm", help="which to build: llm, rm, expert (comma-separated)"
    )
    args = parser.parse_args()
    tokenizer = load_tokenizer()
    sizes = dict(
        vocab_size=len(tokenizer),
        hidden_size=args.hidden,
        num_layers=args.layers,
        num_heads=args.heads,
        num_kv_heads=args.kv_heads,
        intermediate_size=args.ffn,
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    wanted = set(args.models.split(","))
    unknown = wanted - {"llm", "rm", "expert"}
    if unknown:
        parser.error(f"--models={args.models!r} names {sorted(unknown)}: choose from llm, rm, expert")
    builds = (("llm", make_causal_lm, 3), ("rm", make_reward_model, 4), ("expert", make_causal_lm, 5))
    for name, build, seed in (entry for entry in builds if entry[0] in wanted):
        with torch.device(device):
            model = build(seed=seed, **sizes) if name == "rm" else build("llama", seed=seed, **sizes)
        model.to(getattr(torch, args.dtype)).save_pretrained(args.out / name)
        tokenizer.save_pretrained(args.out / name)
        print(
            f"{name}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters -> {args.out / name}"
        )


if __name__ == "__main__":
    main()
