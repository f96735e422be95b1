"""Build and save a real-architecture Llama pair (LLM + one-label reward model, random weights) for GPU checks.

    python scripts/gpu_pair.py OUT_DIR [--hidden 2048 --layers 16 --heads 16 --kv-heads 4 --ffn 5632]
        [--models llm,rm,expert]

Both share the embedded tokenizer (saved beside each), so `otterbench run --base OUT_DIR/llm --reward-model
OUT_DIR/rm` loads them by path exactly as the paper profile loads downloaded checkpoints. `expert` is a
third causal LM (its own seed) for the detox suite's DExperts arms.

`--streamed` (causal LMs only) writes each tensor as it is drawn, in 1 GiB shards, never holding the model:
for a machine that cannot hold it (a 7B model is 27 GB in float32 before the cast). Same shapes and init
distributions (weights N(0, initializer_range), norms 1), other values than the in-memory build.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from otterbench.models.build import make_causal_lm, make_config, make_reward_model
from otterbench.models.tokenizer import load_tokenizer


def save_streamed(out: Path, seed: int, dtype: torch.dtype, sizes: dict) -> int:
    """A random Llama causal LM written tensor by tensor; returns its parameter count."""
    from transformers import AutoModelForCausalLM

    from otterbench.otter.checkpoint import ShardWriter

    config = make_config("llama", **sizes)
    with torch.device("meta"):
        shapes = {name: p.shape for name, p in AutoModelForCausalLM.from_config(config).named_parameters()}
    generator = torch.Generator().manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    writer = ShardWriter(out)
    for name, shape in shapes.items():
        if name.endswith("norm.weight"):
            tensor = torch.ones(shape, dtype=dtype)
        else:
            tensor = (torch.randn(shape, generator=generator) * config.initializer_range).to(dtype)
        writer.add({name: tensor})
    writer.close()
    config.dtype = dtype
    config.architectures = ["LlamaForCausalLM"]
    config.save_pretrained(out)
    return sum(shape.numel() for shape in shapes.values())


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
    parser.add_argument(
        "--streamed", action="store_true", help="write causal LMs tensor by tensor (see above)"
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
    if args.streamed and "rm" in wanted:
        parser.error("--streamed writes causal LMs only: pass --models llm (or llm,expert)")
    for name, build, seed in (entry for entry in builds if entry[0] in wanted):
        if args.streamed:
            count = save_streamed(args.out / name, seed, getattr(torch, args.dtype), sizes)
            tokenizer.save_pretrained(args.out / name)
            print(f"{name}: {count / 1e6:.1f}M parameters -> {args.out / name} (streamed)")
            continue
        with torch.device(device):
            model = build(seed=seed, **sizes) if name == "rm" else build("llama", seed=seed, **sizes)
        model.to(getattr(torch, args.dtype)).save_pretrained(args.out / name)
        tokenizer.save_pretrained(args.out / name)
        print(
            f"{name}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters -> {args.out / name}"
        )


if __name__ == "__main__":
    main()
