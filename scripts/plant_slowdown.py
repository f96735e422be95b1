"""Write a copy of a run whose named arms are slower by a planted amount: the gate's planted comparisons.

    python scripts/plant_slowdown.py RUN_DIR OUT_DIR --arm otter-args --slowdown 30      # Otter +30%
    python scripts/plant_slowdown.py RUN_DIR OUT_DIR --arm all --slowdown 400            # a 5x slower machine

Every ttft, tpot and total sample of each named arm is multiplied by 1 + slowdown/100 and the savings are
recomputed (`power_study.plant_slowdown`); the copy gets its own run_id and is validated before it is
written, so `otterbench check OUT_DIR --baseline ...` reads it like any run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from power_study import plant_slowdown  # noqa: E402

from otterbench.results.files import (  # noqa: E402
    ARMS_FILE,
    RESULTS_FILE,
    arms_frame,
    load_run,
    validate_results,
    write_csv_atomic,
    write_json_atomic,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="the run folder (or results.json) to copy")
    parser.add_argument("out", type=Path, help="the folder to write the planted copy into")
    parser.add_argument("--arm", required=True, help="arm names, comma-separated, or 'all'")
    parser.add_argument("--slowdown", type=float, required=True, help="percent slower, e.g. 30 or 400 (5x)")
    args = parser.parse_args()
    results = load_run(args.run)
    names = [a["name"] for a in results["arms"]] if args.arm == "all" else args.arm.split(",")
    for name in names:
        results = plant_slowdown(results, name, args.slowdown)
    results["run_id"] += f"-planted-{args.arm.replace(',', '+')}-{args.slowdown:g}pct"
    validate_results(results, source=str(args.out / RESULTS_FILE))
    write_json_atomic(args.out / RESULTS_FILE, results)
    write_csv_atomic(args.out / ARMS_FILE, arms_frame(results))
    print(f"wrote {args.out / RESULTS_FILE}: {', '.join(names)} +{args.slowdown:g}%")


if __name__ == "__main__":
    main()
