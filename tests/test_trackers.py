"""Trackers: step counts and timings, per-phase memory, exact weight bytes, energy, JSON records."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from otterbench.env import reset_rss_peak
from otterbench.models.build import make_causal_lm
from otterbench.trackers import (
    EnergyTracker,
    MemoryTracker,
    NullObserver,
    StepObserver,
    StepTimer,
    weights_bytes,
)
from otterbench.trackers import memory as memory_module

CPU = torch.device("cpu")
MB = 1024 * 1024
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _run_batches(observer: StepObserver, device: torch.device, batches: int, steps: int) -> None:
    x = torch.randn(64, 64, device=device)
    for _ in range(batches):
        observer.start_batch()
        for _ in range(steps):
            x = torch.tanh(x @ x)
            observer.end_step()


def test_step_timer_counts_ttft_per_batch_and_tpot_per_later_step() -> None:
    with StepTimer(CPU) as timer:
        _run_batches(timer, CPU, batches=2, steps=5)
    record = timer.record()
    assert record.method == "perf_counter"
    assert len(record.ttft_s) == 2
    assert len(record.tpot_s) == 8
    assert record.steps == 10
    assert all(s > 0 for s in record.ttft_s + record.tpot_s)
    assert record.total_s >= sum(record.ttft_s) + sum(record.tpot_s)


def test_step_timer_ttft_includes_work_before_first_step() -> None:
    with StepTimer(CPU) as timer:
        timer.start_batch()
        time.sleep(0.05)  # stands in for a prefill
        timer.end_step()
        timer.end_step()
    record = timer.record()
    assert record.ttft_s[0] >= 0.05
    assert record.tpot_s[0] < 0.05


def test_step_timer_refuses_step_before_batch_and_record_before_exit() -> None:
    timer = StepTimer(CPU)
    with pytest.raises(RuntimeError, match="start_batch"):
        with timer:
            timer.end_step()
    with pytest.raises(RuntimeError, match="exited"):
        StepTimer(CPU).record()


def test_null_observer_is_a_step_observer_and_records_nothing() -> None:
    observer = NullObserver()
    assert isinstance(observer, StepObserver)
    assert isinstance(StepTimer(CPU), StepObserver)
    _run_batches(observer, CPU, batches=1, steps=3)
    assert vars(observer) == {}


def _touch_200mb() -> None:
    block = torch.ones(200 * MB // 4)  # float32: 200 MB, every page written
    assert block[-1].item() == 1.0
    del block


def test_memory_tracker_cpu_phase_peak_sees_a_200mb_tensor() -> None:
    with MemoryTracker(CPU) as tracker:
        with tracker.phase("idle"):
            pass
        with tracker.phase("alloc"):
            _touch_200mb()
    record = tracker.record()
    assert record.method == "rss"
    idle, alloc = record.by_phase["idle"], record.by_phase["alloc"]
    # Valid for the reset and the cumulative method alike: the idle phase ran first.
    assert alloc.rss_bytes - idle.rss_bytes >= 150 * MB
    assert record.peak_bytes == alloc.peak_bytes == alloc.rss_bytes
    assert alloc.torch_allocated_bytes is None and alloc.nvml_process_bytes is None


@pytest.mark.skipif(not reset_rss_peak()[0], reason="/proc/self/clear_refs cannot reset the peak here")
def test_memory_tracker_cpu_resets_peak_between_phases() -> None:
    with MemoryTracker(CPU) as tracker:
        with tracker.phase("alloc"):
            _touch_200mb()
        with tracker.phase("after"):
            pass
    record = tracker.record()
    assert record.by_phase["alloc"].rss_bytes - record.by_phase["after"].rss_bytes >= 150 * MB
    assert not any("cumulative" in note for note in record.notes)


def test_memory_tracker_cpu_without_reset_is_cumulative_and_says_so(monkeypatch) -> None:
    monkeypatch.setattr(memory_module, "reset_rss_peak", lambda: (False, "clear_refs refused"))
    with MemoryTracker(CPU) as tracker:
        with tracker.phase("idle"):
            pass
        with tracker.phase("alloc"):
            _touch_200mb()
    record = tracker.record()
    assert any("cumulative" in note and "clear_refs refused" in note for note in record.notes)
    idle, alloc = record.by_phase["idle"], record.by_phase["alloc"]
    # getrusage is the lifetime peak: never lower in a later phase, and it covers the 200 MB just touched.
    assert alloc.rss_bytes >= idle.rss_bytes
    assert alloc.rss_bytes >= 200 * MB
    assert record.peak_bytes == alloc.rss_bytes


def test_memory_tracker_refuses_nested_and_repeated_phases() -> None:
    with MemoryTracker(CPU) as tracker:
        with tracker.phase("a"):
            with pytest.raises(RuntimeError, match="nest"):
                with tracker.phase("b"):
                    pass
        with pytest.raises(ValueError, match="already used"):
            with tracker.phase("a"):
                pass


def _expected_bytes(model: torch.nn.Module) -> int:
    tensors = {id(t): t for t in model.parameters()}
    return sum(t.numel() * t.element_size() for t in tensors.values())


def test_weights_bytes_counts_tied_weights_once() -> None:
    tied = make_causal_lm(seed=0, tie_word_embeddings=True)
    assert tied.lm_head.weight is tied.model.embed_tokens.weight
    embed = tied.model.embed_tokens.weight
    assert weights_bytes(tied) == _expected_bytes(tied)
    untied = make_causal_lm(seed=0, tie_word_embeddings=False)
    assert weights_bytes(untied) == weights_bytes(tied) + embed.numel() * embed.element_size()
    # The same module twice, or a submodule of one given, adds nothing.
    assert weights_bytes(tied, tied, tied.model.embed_tokens) == weights_bytes(tied)


def test_weights_bytes_follows_dtype() -> None:
    model = make_causal_lm(seed=0).to(torch.bfloat16)
    n_params = sum(p.numel() for p in model.parameters())
    assert weights_bytes(model) == 2 * n_params


def _powercap(root: Path, zones: dict[str, tuple[str, int]]) -> Path:
    """A fake /sys/class/powercap: zone directory -> (name, energy_uj), each with a 1,000 J range."""
    for zone, (name, energy_uj) in zones.items():
        (root / zone).mkdir(parents=True)
        (root / zone / "name").write_text(f"{name}\n")
        (root / zone / "energy_uj").write_text(f"{energy_uj}\n")
        (root / zone / "max_energy_range_uj").write_text("1000000000\n")
    return root


def _set_uj(root: Path, zone: str, energy_uj: int) -> None:
    (root / zone / "energy_uj").write_text(f"{energy_uj}\n")


def test_cpu_energy_sums_the_rapl_packages_only(tmp_path: Path) -> None:
    zones = {
        "intel-rapl:0": ("package-0", 5_000_000),
        "intel-rapl:0:0": ("core", 1_000_000),  # inside package 0: counted there already
        "intel-rapl:1": ("package-1", 7_000_000),
        "intel-rapl:2": ("psys", 9_000_000),  # the platform, beyond the CPU
        "intel-rapl-mmio:0": ("package-0", 5_000_000),  # package 0 again, through MMIO
    }
    root = _powercap(tmp_path, zones)
    with EnergyTracker(CPU, powercap=root) as tracker:
        for zone in zones:  # every counter moves; only the packages' 1.5 J and 2.0 J count
            _set_uj(root, zone, zones[zone][1] + (1_500_000 if zone == "intel-rapl:0" else 2_000_000))
    record = tracker.record()
    assert record.supported and record.energy_j == pytest.approx(3.5)
    assert "RAPL" in record.note and "2 package(s)" in record.note


def test_cpu_energy_counts_a_counter_that_wrapped(tmp_path: Path) -> None:
    root = _powercap(tmp_path, {"intel-rapl:0": ("package-0", 999_000_000)})  # 1 J before its 1,000 J wrap
    with EnergyTracker(CPU, powercap=root) as tracker:
        _set_uj(root, "intel-rapl:0", 500_000)
    assert tracker.record().energy_j == pytest.approx(1.5)


def test_cpu_energy_without_readable_rapl_is_unsupported_and_says_why(tmp_path: Path) -> None:
    with EnergyTracker(CPU, powercap=tmp_path / "absent") as tracker:
        torch.ones(10).sum()
    record = tracker.record()
    assert record.supported is False and record.energy_j is None and "no RAPL package counter" in record.note
    root = _powercap(tmp_path / "sys", {"intel-rapl:0": ("package-0", 1)})
    (root / "intel-rapl:0" / "energy_uj").unlink()
    (root / "intel-rapl:0" / "energy_uj").mkdir()  # unreadable, as root-only counters are to other users
    with EnergyTracker(CPU, powercap=root) as tracker:
        pass
    record = tracker.record()
    assert record.supported is False and "not readable" in record.note


def test_records_are_json_serialisable() -> None:
    with StepTimer(CPU) as timer, MemoryTracker(CPU) as memory, EnergyTracker(CPU) as energy:
        with memory.phase("decode"):
            _run_batches(timer, CPU, batches=1, steps=2)
    for record in (timer.record(), memory.record(), energy.record()):
        assert json.loads(json.dumps(record.to_dict())) == record.to_dict()


@pytest.mark.gpu
@needs_cuda
def test_gpu_memory_tracker_sees_1gib_and_attributes_or_says_unknown() -> None:
    device = torch.device("cuda:0")
    torch.zeros(1, device=device)  # CUDA context before the tracker's baseline
    with MemoryTracker(device) as tracker:
        with tracker.phase("idle"):
            pass
        with tracker.phase("alloc"):
            block = torch.ones(256 * MB, device=device)  # 1 GiB of float32
            torch.cuda.synchronize(device)
        del block
    record = tracker.record()
    alloc = record.by_phase["alloc"]
    assert alloc.torch_allocated_bytes >= 1024 * MB
    assert alloc.torch_reserved_bytes >= 1024 * MB
    if alloc.nvml_device_bytes is None:
        assert any("NVML" in note for note in record.notes)
    else:
        assert alloc.nvml_device_bytes >= 900 * MB
    if alloc.nvml_process_bytes is None:
        assert record.method == "torch"
        assert any("per-process" in note for note in record.notes)
    else:
        assert record.method == "nvml"
        assert alloc.nvml_process_bytes - record.by_phase["idle"].nvml_process_bytes >= 900 * MB
    torch.cuda.empty_cache()


@pytest.mark.gpu
@needs_cuda
def test_gpu_step_timer_uses_cuda_events() -> None:
    device = torch.device("cuda:0")
    with StepTimer(device) as timer:
        _run_batches(timer, device, batches=2, steps=5)
    record = timer.record()
    assert record.method == "cuda_events"
    assert (len(record.ttft_s), len(record.tpot_s)) == (2, 8)
    assert all(s > 0 for s in record.ttft_s + record.tpot_s)
    assert record.total_s >= sum(record.ttft_s) + sum(record.tpot_s)


@pytest.mark.gpu
@needs_cuda
def test_gpu_energy_supported_or_cleanly_unsupported() -> None:
    device = torch.device("cuda:0")
    x = torch.randn(2048, 2048, device=device)
    with EnergyTracker(device) as tracker:
        for _ in range(200):
            x = torch.tanh(x @ x)
    record = tracker.record()
    if record.supported:
        assert record.energy_j is not None and record.energy_j >= 0
    else:
        assert record.energy_j is None and record.note
