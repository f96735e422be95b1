"""Runs and sweeps sharing one folder at once: nothing crashes, no index update is lost, no run is orphaned.

Each test starts two real `otterbench` processes together (the smallest runs: inline arms, 2 prompts x 2
tokens), since the locks under test are between processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from otterbench.results.files import load_run
from otterbench.run import fused_checkpoint
from otterbench.run.config import resolve_run_config
from otterbench.run.fused_checkpoint import INFO_FILE, prepare_fused_checkpoint
from otterbench.run.preflight import preflight

TINY = ["--device", "cpu", "--isolation", "inline", "--num-prompts", "2", "--max-new-tokens", "2"]
TINY += ["--repeats", "1", "--warmup", "0"]
TINY += ["--yardstick-engine", "static"]  # a subprocess is out of conftest's reach: the cheap stand-in


def _together(*commands: list[str]) -> list[subprocess.CompletedProcess]:
    """Start every command at once, then wait for all of them."""
    started = [
        subprocess.Popen(
            [sys.executable, "-m", "otterbench", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    outputs = [p.communicate(timeout=300) for p in started]
    return [subprocess.CompletedProcess(p.args, p.returncode, *out) for p, out in zip(started, outputs)]


def test_two_runs_into_one_out_both_finish_and_share_one_fused_checkpoint(tmp_path) -> None:
    done = _together(*[["run", "--out", str(tmp_path), "--arms", "otter-args", *TINY]] * 2)
    for run in done:
        assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    run_dirs = sorted(path.parent for path in tmp_path.glob("safety/*/results.json"))
    assert len(run_dirs) == 2 and all(load_run(d)["status"] == "complete" for d in run_dirs)
    cache = tmp_path / fused_checkpoint.CACHE_DIR
    assert len([d for d in cache.iterdir() if d.is_dir()]) == 1  # built once, no .building- leftover


def test_a_checkpoint_finished_by_another_run_during_the_build_is_used(tmp_path, monkeypatch) -> None:
    """Where the lock cannot hold (a file system without locks), the loser of the rename uses the winner's."""
    config = resolve_run_config("safety", out_dir=tmp_path, arms=["otter-args"], device="cpu")
    (catalogue,) = preflight(config)
    real_build = fused_checkpoint._build

    def build_while_another_finishes(config, base_source: str, scratch: Path, device) -> None:
        real_build(config, base_source, scratch, device)
        key = fused_checkpoint.fused_cache_key(config, catalogue["base"])
        winner = tmp_path / fused_checkpoint.CACHE_DIR / key
        winner.mkdir()
        (winner / "model.safetensors").write_bytes(b"x")  # a non-empty folder: the rename must fail
        (winner / INFO_FILE).write_text("{}\n")

    monkeypatch.setattr(fused_checkpoint, "_build", build_while_another_finishes)
    directory = prepare_fused_checkpoint(config, catalogue)
    assert (directory / INFO_FILE).read_text() == "{}\n"
    assert not list(directory.parent.glob(".building-*"))


def test_two_sweeps_with_one_id_at_once_lose_no_point_and_orphan_no_run(tmp_path) -> None:
    sweep = [
        "sweep",
        "--out",
        str(tmp_path),
        "--sweep-id",
        "shared",
        "--vary",
        "batch_size=1,2",
        "--arms",
        "base",
    ]
    sweep += TINY
    done = _together(sweep, sweep)
    for run in done:
        assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    sweep_dir = tmp_path / "safety" / "sweeps" / "shared"
    index = json.loads((sweep_dir / "index.json").read_text())
    assert [p["status"] for p in index["points"]] == ["complete", "complete"]
    recorded = {run for p in index["points"] for run in [p["run_dir"], *p["attempts"]]}
    on_disk = {str(path.parent.relative_to(sweep_dir)) for path in sweep_dir.rglob("results.json")}
    assert on_disk == recorded  # every run folder is some point's; no point measured twice
