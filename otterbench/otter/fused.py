"""The fused layout: one standard widened checkpoint of the base model's family.

Every projection becomes the block matrix `[[W, 0], [A, B]]` (hidden d+dx, heads h+hx, kv heads g+gx, FFN
m+mx); the only non-standard piece is the norm taking its variance over the first d channels — the one-line
change an inference engine makes (`PrefixRMSNorm`). One GEMM per projection, but the zero blocks are stored
and multiplied, and the wider reductions can change float summation order: its deviation from the base is
measured (`measure_disruption`), never assumed.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
import transformers
from torch import nn
from transformers import AutoModelForCausalLM

from otterbench.compat import cache_kwargs, output_cache
from otterbench.otter.layouts import LAYOUTS, SIGNAL, layout_pieces
from otterbench.otter.output import OtterOutput
from otterbench.otter.spec import OtterSpec
from otterbench.otter.support import FUSED_ARCHITECTURES, check_supported
from otterbench.otter.tensors import FolderTensors, SavedInserted, StateTensors

CONFIG_FIELD = "otter_original_hidden_size"
FORMAT = (
    "otterbench-fused/2"  # /2: its own architecture name, the signal head among its weights (no side file)
)


class PrefixRMSNorm(nn.Module):
    """RMSNorm over d+dx channels whose variance is taken over the first d only (the one-line change)."""

    def __init__(self, weight: torch.Tensor, eps: float, original_size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.detach().clone())
        self.variance_epsilon = eps
        self.original_size = original_size

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.to(torch.float32)
        variance = hidden_states[..., : self.original_size].pow(2).mean(-1, keepdim=True)  # the change
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * hidden_states.to(input_dtype)


def apply_prefix_norms(model: nn.Module, original_size: int) -> None:
    """Swap every RMSNorm of a widened checkpoint for PrefixRMSNorm (same weights)."""
    inner = model.model
    norms = [(inner, "norm")]
    for layer in inner.layers:
        norms += [(layer, "input_layernorm"), (layer, "post_attention_layernorm")]
    for parent, name in norms:
        norm = getattr(parent, name)
        eps = getattr(norm, "variance_epsilon", getattr(norm, "eps", 1e-6))
        setattr(parent, name, PrefixRMSNorm(norm.weight, eps, original_size))


class FusedOtterModel(nn.Module):
    """A widened standard causal LM (`.model`) plus the signal head reading the extra channels."""

    layout = "fused"

    def __init__(self, model: nn.Module, signal_head: nn.Linear, original_size: int, spec: OtterSpec) -> None:
        super().__init__()
        self.model = model
        self.signal_head = signal_head
        self.original_size = original_size
        self.spec = spec

    @property
    def config(self) -> Any:
        return self.model.config

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        past_key_values: Any = None,
        use_cache: bool = False,
        position_ids: torch.Tensor | None = None,
        logits_to_keep: int = 0,
    ) -> OtterOutput:
        """Logits from the widened lm_head `[W_lm | 0]`, signal from the extra channels (of the last
        `logits_to_keep` positions only, when > 0)."""
        out = self.model.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=use_cache,
            **cache_kwargs(past_key_values),
        )
        hidden = out.last_hidden_state
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        return OtterOutput(
            logits=self.model.lm_head(hidden),
            signal=self.signal_head(hidden[..., self.original_size :]),
            past_key_values=output_cache(out) if use_cache else None,
        )

    def num_stored_extra_parameters(self, base_parameters: int) -> int:
        """Parameters stored beyond the base model's, zero blocks included."""
        return sum(p.numel() for p in self.parameters()) - base_parameters


def _fused_config(otter: nn.Module) -> Any:
    config = widened_config(otter.config, otter.dims, otter.spec)
    config._attn_implementation = otter.config._attn_implementation
    return config


def widened_config(base_config: Any, dims: Any, spec: OtterSpec) -> Any:
    """The base's config at the fused layout's sizes (d+dx, h+hx, g+gx, m+mx): what the checkpoint declares."""
    config = copy.deepcopy(base_config)
    config.hidden_size = dims.hidden_size + spec.extra_hidden_size
    config.num_attention_heads = dims.num_heads + spec.query_heads_for(dims)
    config.num_key_value_heads = dims.num_kv_heads + spec.extra_kv_heads
    config.intermediate_size = dims.intermediate_size + spec.extra_intermediate_size
    config.head_dim = dims.head_dim
    config.tie_word_embeddings = False  # the fused lm_head is [W_lm | 0], no longer the widened embedding
    setattr(config, CONFIG_FIELD, dims.hidden_size)
    config.otter_spec = spec.to_dict()
    return config


def fused_checkpoint_config(base_config: Any, dims: Any, spec: OtterSpec) -> Any:
    """The config a fused checkpoint folder declares: the widened sizes and its causal-LM class."""
    config = widened_config(base_config, dims, spec)
    check_savable(config, dims.hidden_size)
    with torch.device("meta"):
        family = type(AutoModelForCausalLM.from_config(config)).__name__
    config.architectures = [FUSED_ARCHITECTURES[family]]  # an engine without otterbench's plugin refuses it
    return config


def check_savable(config: Any, original_size: int, layout: str = "fused") -> None:
    """Refuse widened sizes transformers cannot save or load (fused and packed checkpoints), naming the fix."""
    if config.hidden_size % config.num_attention_heads:
        extra_heads = config.num_attention_heads - original_size // config.head_dim
        raise ValueError(
            f"cannot save the {layout} layout's checkpoint: transformers requires hidden_size "
            f"({config.hidden_size}) to be a multiple of num_attention_heads ({config.num_attention_heads}); "
            f"choose extra_hidden_size = extra_query_heads * head_dim (= {extra_heads * config.head_dim})"
        )


def layout_state_dict(otter: nn.Module, layout: str) -> dict[str, torch.Tensor]:
    """The whole `layout` state dict of a split OtterModel, from the pieces a streamed build writes."""
    reference = otter.base_model.lm_head.weight
    tied = bool(getattr(otter.config, "tie_word_embeddings", False))
    base = StateTensors(otter.base_model.state_dict(), tied, reference.device, reference.dtype)
    inserted = SavedInserted(
        StateTensors(otter.inserted_state_dict(), tied, reference.device, reference.dtype)
    )
    state: dict[str, torch.Tensor] = {}
    for piece in layout_pieces(LAYOUTS[layout], base, inserted, otter.dims):
        state.update(piece)
    return state


@torch.no_grad()
def fuse(otter: nn.Module) -> FusedOtterModel:
    """Build the fused layout of a split OtterModel (new tensors; the split model is left as it was)."""
    reference = otter.base_model.lm_head.weight
    config = _fused_config(otter)
    with torch.device(reference.device):
        model = type(otter.base_model)(config)
    model.to(dtype=reference.dtype).eval()
    state = layout_state_dict(otter, "fused")
    head = state.pop(SIGNAL)
    model.load_state_dict(state, strict=True)
    apply_prefix_norms(model, otter.dims.hidden_size)
    signal_head = nn.Linear(head.shape[1], head.shape[0], bias=False)
    signal_head.to(device=reference.device, dtype=reference.dtype).weight.copy_(head)
    fused = FusedOtterModel(model, signal_head, otter.dims.hidden_size, otter.spec)
    return fused.train(otter.training)


def save_fused(fused: FusedOtterModel, directory: str | Path) -> Path:
    """Write the fused model as a checkpoint of its family's layout that declares its own architecture
    (`Otter<Family>ForCausalLM`: only an engine with otterbench's plugin accepts it), the signal head among
    its weights (`signal_head.weight`, as the streamed build writes it)."""
    check_savable(fused.model.config, fused.original_size)
    directory = Path(directory)
    state = {**fused.model.state_dict(), SIGNAL: fused.signal_head.weight.detach()}
    fused.model.save_pretrained(directory, state_dict=state, safe_serialization=True)
    config_path = directory / "config.json"  # save_pretrained writes the class it saved: declare Otter's
    saved = json.loads(config_path.read_text())
    saved["architectures"] = [FUSED_ARCHITECTURES[type(fused.model).__name__]]
    config_path.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")
    return directory


def _family_class(architecture: Any) -> type:
    """The transformers class of the family a fused checkpoint's architecture name declares."""
    family = {otter: base for base, otter in FUSED_ARCHITECTURES.items()}.get(architecture)
    if family is None:
        raise ValueError(
            f"architecture {architecture!r} is not a fused Otter checkpoint's "
            f"(expected one of {sorted(FUSED_ARCHITECTURES.values())})"
        )
    # the signal head sits among the weights: not an unexpected key for the widened causal LM
    return type(family, (getattr(transformers, family),), {"_keys_to_ignore_on_load_unexpected": [SIGNAL]})


def load_fused(
    directory: str | Path, *, device: str | torch.device = "cpu", dtype: Any = None
) -> FusedOtterModel:
    """One call: load a fused checkpoint, restore the variance-over-d norm change and the signal head."""
    directory = Path(directory)
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise ValueError(f"{directory} is not a fused Otter checkpoint: config.json is missing")
    saved = json.loads(config_path.read_text())
    original_size = saved.get(CONFIG_FIELD)
    if not isinstance(original_size, int) or not isinstance(saved.get("otter_spec"), dict):
        raise ValueError(
            f"{config_path} lacks the integer field {CONFIG_FIELD!r}: not a fused Otter checkpoint"
        )
    kwargs = {"dtype": dtype} if dtype is not None else {}
    family = _family_class((saved.get("architectures") or [None])[0])
    model = family.from_pretrained(directory, local_files_only=True, **kwargs)
    check_supported(model)
    apply_prefix_norms(model, original_size)
    weight = FolderTensors(directory, tied=False, device="cpu", dtype=None).read([SIGNAL])[SIGNAL]
    signal_head = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    with torch.no_grad():
        signal_head.weight.copy_(weight)
    model_dtype = next(model.parameters()).dtype
    fused = FusedOtterModel(
        model, signal_head.to(model_dtype), original_size, OtterSpec.from_dict(saved["otter_spec"])
    )
    return fused.to(device).eval()
