"""Build a fused or packed Otter checkpoint from a saved base, shard by shard, and print its seconds and bytes.

    python scripts/build_checkpoint.py BASE_DIR OUT_DIR [--layout packed] [--device cuda] [--dtype bfloat16]
        [--ratio 0.125 | --otter DIR] [--init copy]

The base is read from its safetensors one piece at a time (embedding, each decoder layer, norm and heads)
on `--device`; the widened (fused) or packed tensors are built there and written in shards, so the base and
the result are never whole in memory (otter/checkpoint.py). The run builds the same folder for
`--layout fused|packed`; this script times the build alone (wrap it in `/usr/bin/time -v` for peak RSS).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from otterbench.models.loading import load_config
from otterbench.otter import OtterSpec
from otterbench.otter.checkpoint import build_checkpoint, fresh_inserted
from otterbench.otter.io import WEIGHTS_FILE, read_otter_config, safetensors_numel
from otterbench.otter.tensors import FolderTensors, SavedInserted
from otterbench.plan.layouts import stored_extra_parameters
from otterbench.plan.shapes import shape_of_config


def _stored(folder: Path) -> int:
    """Parameters the folder's safetensors files hold, read from their headers."""
    return sum(safetensors_numel(path) for path in folder.glob("*.safetensors"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", type=Path, help="a saved base model folder (config.json + safetensors)")
    parser.add_argument("out", type=Path, help="the checkpoint folder to write (must not exist)")
    parser.add_argument("--layout", choices=("fused", "packed"), default="packed")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--ratio", type=float, default=0.125, help="insertion size when no --otter is given")
    parser.add_argument("--init", choices=("copy", "normal", "zeros"), default="copy")
    parser.add_argument("--otter", type=Path, help="a saved insertion (from `otterbench distill`)")
    args = parser.parse_args()
    if args.out.exists():
        parser.error(f"{args.out} exists: pass a new folder")
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    config = load_config(str(args.base), "base")
    tied = bool(getattr(config, "tie_word_embeddings", False))
    base = FolderTensors(args.base, tied, device, dtype)
    if args.otter:
        spec = OtterSpec.from_dict(read_otter_config(args.otter)["spec"])
        inserted = SavedInserted(FolderTensors(args.otter, False, device, dtype, file_name=WEIGHTS_FILE))
    else:
        spec = OtterSpec.from_ratio(config, args.ratio, signal="vocab", init=args.init)
        inserted = fresh_inserted(config, spec, device, dtype)
    start = time.perf_counter()
    try:
        build_checkpoint(args.out, args.layout, base, config, inserted, spec)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    base_shape = shape_of_config(
        json.loads(config.to_json_string(use_diff=False)), str(args.base), "causal-lm"
    )
    report = {
        "layout": args.layout,
        "device": str(device),
        "seconds": round(seconds, 2),
        "stored_extra_parameters": _stored(args.out) - _stored(args.base),  # from the files' headers
        "expected_extra_parameters": stored_extra_parameters(
            args.layout, config, spec, base_shape
        ),  # planner
        "cuda_peak_allocated_bytes": torch.cuda.max_memory_allocated(device)
        if device.type == "cuda"
        else None,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
