"""Shared fixtures: tiny seeded models built from configs (no downloads), and the GPU switch for tests."""

from __future__ import annotations

import functools

import pytest
import torch


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def left_padded_batch(vocab: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three prompts of lengths 9, 6 and 3, left-padded with id 0, and their attention mask."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (3, 9), generator=generator)
    mask = torch.ones_like(ids)
    for row, pad in enumerate((0, 3, 6)):
        ids[row, :pad] = 0
        mask[row, :pad] = 0
    return ids, mask


# Tolerances for two *different* computations of the same values (other shapes, cache kinds, kernels, batch
# compositions): a BLAS may sum in another order when a shape changes (MKL on an AVX-512 EPYC moves fp32
# logits by ~2e-7 when the key count changes), so only the same computation may be asserted torch.equal.
DTYPE_TOLERANCE = {
    torch.float32: {"rtol": 1e-5, "atol": 1e-5},
    torch.bfloat16: {"rtol": 3e-2, "atol": 3e-2},
}


def assert_close_in_dtype(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """`actual` equals `expected` within its dtype's tolerance for a differently computed result."""
    torch.testing.assert_close(actual, expected, **DTYPE_TOLERANCE[expected.dtype])


@pytest.fixture(autouse=True, scope="session")
def _peaks_measured_once():
    """Every run measures the peak memory bandwidth (~0.4 s of copies) and FLOP/s (matmuls); the tests' runs
    share one measurement of each."""
    from otterbench.run import efficiency

    monkeypatch = pytest.MonkeyPatch()
    for name in ("measure_peak_bandwidth", "measure_peak_flops"):
        measured = functools.cache(getattr(efficiency, name))
        monkeypatch.setattr(efficiency, name, lambda *args, measured=measured: dict(measured(*args)))
    yield
    monkeypatch.undo()


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny models are bound by per-op overhead: one thread avoids OpenMP spin-waits on a shared 2-core box."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True, scope="session")
def _yardstick_uncompiled():
    """Runs in tests set the base against its static-cache path uncompiled (the cheap stand-in): compiling the
    compiled engine's step costs 15-60 s per run here; tests/test_yardstick.py proves the compiled one."""
    from otterbench.run import settings

    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(settings, "DEFAULT_YARDSTICK_ENGINE", "static")
    yield
    monkeypatch.undo()
