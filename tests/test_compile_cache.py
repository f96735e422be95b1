"""torch.compile's caches for a run's arm processes: one folder for the run, or one per arm; options checked."""

from __future__ import annotations

import os

import pytest

from otterbench.run.compile_cache import (
    CACHE_DIR_VARIABLE,
    compile_cache_root,
    use_compile_cache,
    with_compile_caches,
)
from otterbench.run.config import RunInputError, resolve_run_config
from otterbench.run.resolve import resolve_run

ARMS = ["base", "args-faithful", "otter-args"]


def _resolved(tmp_path, **fields):
    config = resolve_run_config("safety", out_dir=tmp_path, device="cpu", arms=ARMS, **fields)
    return resolve_run(config)


def test_a_run_shares_one_compile_cache_folder_between_its_arms(tmp_path) -> None:
    resolved = _resolved(tmp_path)
    assert resolved.config.process.compile_cache == "run"  # the default
    folders = {job.compile_cache_dir for job in with_compile_caches(resolved, tmp_path / "cache").jobs}
    assert folders == {str(tmp_path / "cache")}


def test_arm_mode_gives_every_arm_a_folder_of_its_own(tmp_path) -> None:
    resolved = _resolved(tmp_path, compile_cache="arm")
    folders = [job.compile_cache_dir for job in with_compile_caches(resolved, tmp_path / "cache").jobs]
    assert len(set(folders)) == len(ARMS)
    assert all(os.path.dirname(folder) == str(tmp_path / "cache") for folder in folders)


def test_an_arm_process_points_torchs_caches_at_its_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(CACHE_DIR_VARIABLE, raising=False)
    use_compile_cache(None)  # inline runs: the process keeps its own caches
    assert CACHE_DIR_VARIABLE not in os.environ
    use_compile_cache(str(tmp_path))
    from torch._inductor.runtime.cache_dir_utils import cache_dir  # where inductor writes, read back

    assert cache_dir() == str(tmp_path)


@pytest.mark.parametrize(
    ("field", "option"), [("compile_cache", "--compile-cache"), ("yardstick_engine", "--yardstick-engine")]
)
def test_unknown_cache_and_yardstick_choices_are_refused(tmp_path, field: str, option: str) -> None:
    with pytest.raises(RunInputError, match=f"{option}='fast' is unknown: choose"):
        resolve_run_config("safety", out_dir=tmp_path, **{field: "fast"})


def test_a_folder_given_is_shared_by_the_arms_and_kept_for_later_runs(tmp_path) -> None:
    kept = tmp_path / "ci" / "compile-cache"
    resolved = _resolved(tmp_path, compile_cache=str(kept))
    assert resolved.config.process.compile_cache == str(kept)
    with compile_cache_root(resolved.config.process.compile_cache) as root:
        folders = {job.compile_cache_dir for job in with_compile_caches(resolved, root).jobs}
        (root / "graph").write_text("compiled")
    assert folders == {str(kept)}
    assert (kept / "graph").read_text() == "compiled"  # a later run finds it
    with compile_cache_root("run") as fresh:
        assert fresh != kept and not (fresh / "graph").exists()
    assert not fresh.exists()  # the run's own folder goes with the run


def test_a_cache_folder_that_is_a_file_is_refused(tmp_path) -> None:
    taken = tmp_path / "cache"
    taken.write_text("not a folder")
    with pytest.raises(RunInputError, match="--compile-cache=.* is a file: pass a folder path"):
        resolve_run_config("safety", out_dir=tmp_path, compile_cache=str(taken))
