"""How much the measurement harness itself costs: one arm run bare vs under every tracker, interleaved.

    python scripts/harness_overhead.py [--arm otter-args] [--rounds 10] [--device cpu]

Bare = `arm.run(workload, device)` with no observer; tracked = the same call inside MemoryTracker.phase,
EnergyTracker and StepTimer (what `otterbench run` does per measured repeat). Rounds alternate bare/tracked
so drift hits both; prints both medians, their ratio and the per-step marks' share.
"""

from __future__ import annotations

import argparse
import statistics
import time

from otterbench.arms import build_arm
from otterbench.env import resolve_device
from otterbench.models.loading import load_model_set
from otterbench.otter import OtterSpec, insert_otter
from otterbench.run.session import pin_cpu_threads
from otterbench.run.suite import load_prompts, load_suite
from otterbench.trackers.energy import EnergyTracker
from otterbench.trackers.latency import StepTimer
from otterbench.trackers.memory import MemoryTracker
from otterbench.workload import build_workload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", default="otter-args")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    if device.type == "cpu":
        pin_cpu_threads(1)  # as `otterbench run` does on CPU
    suite = load_suite("safety")
    models = load_model_set("tiny", needs={"base", "reward_model"}, profiles=suite.profiles, device=device)
    workload = build_workload(
        load_prompts(suite.prompts_path),
        models.tokenizer,
        batch_size=suite.batch_size,
        max_new_tokens=suite.max_new_tokens,
        num_prompts=suite.num_prompts,
        knobs=suite.knobs,
    )
    otter = insert_otter(models.base, OtterSpec.from_ratio(models.base.config))
    arm = build_arm(args.arm, models, otter if args.arm.startswith("otter") else None)
    arm.run(workload, device)  # warm-up
    bare, tracked = [], []
    for round_index in range(args.rounds):
        start = time.perf_counter()
        arm.run(workload, device)
        bare.append(time.perf_counter() - start)
        start = time.perf_counter()
        memory = MemoryTracker(device)
        with memory, memory.phase(f"round-{round_index}"), EnergyTracker(device), StepTimer(device) as timer:
            arm.run(workload, device, timer)
        tracked.append(time.perf_counter() - start)
    bare_s, tracked_s = statistics.median(bare), statistics.median(tracked)
    print(
        f"arm {args.arm} on {device}, {args.rounds} rounds, {workload.num_prompts} prompts x "
        f"{workload.max_new_tokens} tokens"
    )
    print(f"bare     median {bare_s * 1e3:9.2f} ms  (min {min(bare) * 1e3:.2f}, max {max(bare) * 1e3:.2f})")
    print(
        f"tracked  median {tracked_s * 1e3:9.2f} ms  (min {min(tracked) * 1e3:.2f}, max {max(tracked) * 1e3:.2f})"
    )
    print(
        f"tracked / bare = {tracked_s / bare_s:.3f}  (harness overhead {100 * (tracked_s / bare_s - 1):+.1f}%)"
    )


if __name__ == "__main__":
    main()
