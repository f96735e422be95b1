"""Each arm's compile seconds, the yardstick's engine change and the tokens, side by side for several runs.

    python scripts/compile_seconds.py RUN_DIR_OR_RESULTS.json [...]

Reads only what the results files hold: an arm's `compile_s` (its unmeasured compile run: every decode graph
compiled, plus one pass), the yardstick's `engine` change (its engines and seconds, compiling included), the
run's `compile_cache` setting and each arm's `token_ids_hash`. Used for docs/measurements/cpu-compile-cache.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _load(path: str) -> dict:
    file = Path(path)
    return json.loads((file / "results.json" if file.is_dir() else file).read_text())


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def main(paths: list[str]) -> None:
    runs = [_load(path) for path in paths]
    if not runs:
        sys.exit("no results files")
    names = [arm["name"] for arm in runs[0]["arms"]]
    print(
        f"{'compile_cache':14}" + "".join(f"{name:>16}" for name in names) + f"{'yardstick':>12}  arms total"
    )
    for run in runs:
        arms = {arm["name"]: arm for arm in run["arms"]}
        compiles = [arms[name].get("compile_s") for name in names]
        engine = ((run["non_disruption"].get("yardstick") or {}).get("changes") or {}).get("engine") or {}
        total = sum(value for value in compiles if value is not None)
        row = "".join(f"{_seconds(value):>16}" for value in compiles)
        print(
            f"{run['config'].get('compile_cache', '?'):14}{row}{_seconds(engine.get('seconds')):>12}  {total:.1f}"
        )
    for run in runs:
        hashes = " ".join(f"{arm['name']}={str(arm['token_ids_hash'])[:8]}" for arm in run["arms"])
        print(f"{run['config'].get('compile_cache', '?')}: {hashes}")


if __name__ == "__main__":
    main(sys.argv[1:])
