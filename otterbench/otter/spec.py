"""OtterSpec: how many channels, heads and neurons Otter inserts, validated once where it enters.

Sizes follow docs/otter.md: extra hidden `dx`, extra kv heads `gx` (extra query heads `hx = gx*h/g`,
so every fused head group keeps the base model's query-per-kv ratio), extra FFN width `mx`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

# one eighth of each base dimension (docs/otter.md): the insertion size everywhere by default
DEFAULT_RATIO = 0.125

SIGNALS = ("vocab", "scalar")
# the layouts of the same inserted parameters (docs/otter.md): split runs wrappers beside the base; the
# engine-ready ones are checkpoints built by otter/checkpoint.py
LAYOUTS = ("split", "fused", "packed")
CHECKPOINT_LAYOUTS = ("fused", "packed")
# the order a backend that serves every layout prefers them in; its first is what a run measures unless
# --layout says otherwise (docs/otter.md "Which layout a run measures" gives the evidence). A backend that
# serves fewer (an inference engine loading only `fused`) declares its own in BackendSpec.layouts.
PREFERRED_LAYOUTS = ("packed", "split", "fused")
INITS = ("copy", "normal", "zeros")


@dataclass(frozen=True)
class BaseDims:
    """The base model's sizes that Otter depends on, read from a transformers config."""

    hidden_size: int  # d
    num_heads: int  # h
    num_kv_heads: int  # g
    head_dim: int  # hd
    intermediate_size: int  # m
    vocab_size: int  # V
    num_layers: int  # L
    attention_bias: bool  # bias on q/k/v (Qwen2 always, Llama when attention_bias)
    o_bias: bool  # bias on o_proj (Llama attention_bias; never Qwen2)
    mlp_bias: bool

    @classmethod
    def from_config(cls, config: Any) -> BaseDims:
        """Read the dimensions of a Llama/Qwen2/Mistral-style config."""
        d = config.hidden_size
        h = config.num_attention_heads
        g = getattr(config, "num_key_value_heads", None) or h
        hd = getattr(config, "head_dim", None) or d // h
        model_type = getattr(config, "model_type", "")
        qkv_bias = model_type == "qwen2" or bool(getattr(config, "attention_bias", False))
        o_bias = model_type != "qwen2" and bool(getattr(config, "attention_bias", False))
        return cls(
            hidden_size=d,
            num_heads=h,
            num_kv_heads=g,
            head_dim=hd,
            intermediate_size=config.intermediate_size,
            vocab_size=config.vocab_size,
            num_layers=config.num_hidden_layers,
            attention_bias=qkv_bias,
            o_bias=o_bias,
            mlp_bias=bool(getattr(config, "mlp_bias", False)),
        )


def _require_int(field: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"OtterSpec.{field}={value!r} is invalid: expected an integer >= {minimum}")


@dataclass(frozen=True)
class OtterSpec:
    """Sizes and options of one Otter insertion.

    extra_query_heads defaults to `extra_kv_heads * h / g`; any other value breaks GQA grouping and is
    refused when the spec meets a model (`validate_for`).
    """

    extra_hidden_size: int
    extra_kv_heads: int
    extra_intermediate_size: int
    signal: Literal["vocab", "scalar"] = "vocab"
    init: Literal["copy", "normal", "zeros"] = "copy"
    extra_query_heads: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        _require_int("extra_hidden_size", self.extra_hidden_size, 1)
        _require_int("extra_kv_heads", self.extra_kv_heads, 1)
        _require_int("extra_intermediate_size", self.extra_intermediate_size, 1)
        if self.extra_query_heads is not None:
            _require_int("extra_query_heads", self.extra_query_heads, 1)
        _require_int("seed", self.seed, 0)
        if self.signal not in SIGNALS:
            raise ValueError(f"OtterSpec.signal={self.signal!r} is invalid: expected one of {SIGNALS}")
        if self.init not in INITS:
            raise ValueError(f"OtterSpec.init={self.init!r} is invalid: expected one of {INITS}")

    @classmethod
    def from_ratio(
        cls,
        config: Any,
        ratio: float = DEFAULT_RATIO,
        signal: Literal["vocab", "scalar"] = "vocab",
        init: Literal["copy", "normal", "zeros"] = "copy",
        tensor_parallel_size: int = 1,
    ) -> OtterSpec:
        """Derive sizes as a fraction of the base model's: dx=d*r, mx=m*r, gx=max(1, g*r), each rounded, dx to
        the nearest width d+dx that the h+hx query heads divide (a transformers checkpoint of the packed or
        fused layout requires it); with `tensor_parallel_size` N > 1, gx and mx move to the nearest sizes N
        ranks can split (`divisible_spec`)."""
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
            raise ValueError(f"ratio={ratio!r} is invalid: expected a number in (0, 1]")
        dims = BaseDims.from_config(config)
        spec = cls(
            extra_hidden_size=max(1, round(dims.hidden_size * ratio)),
            extra_kv_heads=max(1, round(dims.num_kv_heads * ratio)),
            extra_intermediate_size=max(1, round(dims.intermediate_size * ratio)),
            signal=signal,
            init=init,
        )
        if tensor_parallel_size > 1 and tensor_parallel_problems(dims, spec, tensor_parallel_size):
            return divisible_spec(dims, spec, tensor_parallel_size)
        heads = dims.num_heads + spec.query_heads_for(dims)
        return replace(
            spec, extra_hidden_size=_nearest_multiple_above(spec.extra_hidden_size, dims.hidden_size, heads)
        )

    def query_heads_for(self, dims: BaseDims) -> int:
        """hx: extra query heads, keeping the base's query-per-kv-head ratio."""
        return self.extra_kv_heads * (dims.num_heads // dims.num_kv_heads)

    def validate_for(self, dims: BaseDims) -> None:
        """Refuse sizes this base model cannot take."""
        if dims.num_heads % dims.num_kv_heads:
            raise ValueError(
                f"base model has {dims.num_heads} query heads over {dims.num_kv_heads} kv heads; "
                "Otter needs a whole number of query heads per kv head"
            )
        expected = self.query_heads_for(dims)
        if self.extra_query_heads is not None and self.extra_query_heads != expected:
            raise ValueError(
                f"OtterSpec.extra_query_heads={self.extra_query_heads} breaks GQA grouping: with "
                f"extra_kv_heads={self.extra_kv_heads} it must be extra_kv_heads*h/g = {expected}"
            )

    def signal_size(self, dims: BaseDims) -> int:
        return dims.vocab_size if self.signal == "vocab" else 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OtterSpec:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown OtterSpec fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)


def _nearest_multiple_above(value: int, base: int, size: int) -> int:
    """The x >= 1 nearest to `value` with (base + x) divisible by `size` (the larger one on a tie)."""
    low = value - (base + value) % size
    high = low + size
    return high if low < 1 or value - low >= high - value else low


def _split_problems(widths: dict[str, tuple[int, int]], size: int) -> list[str]:
    """name -> (base, extra) widths an engine splits over `size` ranks; kv heads may also be replicated
    when fewer than the ranks and dividing them (vLLM's rule)."""
    problems = []
    for name, (base, extra) in widths.items():
        total = base + extra
        replicable = name == "kv heads" and total < size and size % total == 0
        if total % size and not replicable:
            shown = f"{base}+{extra}={total}" if extra else f"{total}"
            problems.append(f"{name} {shown} is not a multiple of {size}")
    return problems


def base_tensor_parallel_problems(dims: BaseDims, size: int) -> list[str]:
    """Why `size` tensor-parallel ranks cannot split the base model itself (heads, kv heads, FFN width)."""
    widths = {"query heads": (dims.num_heads, 0), "kv heads": (dims.num_kv_heads, 0)}
    return _split_problems({**widths, "FFN width": (dims.intermediate_size, 0)}, size)


def tensor_parallel_problems(dims: BaseDims, spec: OtterSpec, size: int) -> list[str]:
    """Why `size` tensor-parallel ranks cannot split the fused checkpoint of `spec` on this base: an engine
    splits query heads h+hx, kv heads g+gx and FFN width m+mx evenly over the ranks."""
    widths = {
        "query heads": (dims.num_heads, spec.query_heads_for(dims)),
        "kv heads": (dims.num_kv_heads, spec.extra_kv_heads),
        "FFN width": (dims.intermediate_size, spec.extra_intermediate_size),
    }
    return _split_problems(widths, size)


def divisible_spec(dims: BaseDims, spec: OtterSpec, size: int) -> OtterSpec:
    """`spec` with extra_kv_heads and extra_intermediate_size moved to the nearest sizes `size` ranks can
    split. Query heads follow: with r = h/g query heads per kv head, h+hx = r*(g+gx) divides when g+gx does.
    dx moves to the nearest width d+dx that the h+hx heads divide, as a transformers checkpoint requires."""
    gx = _nearest_multiple_above(spec.extra_kv_heads, dims.num_kv_heads, size)
    mx = _nearest_multiple_above(spec.extra_intermediate_size, dims.intermediate_size, size)
    fixed = replace(spec, extra_kv_heads=gx, extra_intermediate_size=mx, extra_query_heads=None)
    heads = dims.num_heads + fixed.query_heads_for(dims)
    dx = _nearest_multiple_above(spec.extra_hidden_size, dims.hidden_size, heads)
    return replace(fixed, extra_hidden_size=dx)


def _inserted_biases(dims: BaseDims, spec: OtterSpec) -> int:
    """Bias entries of one layer's inserted rows, where the base's projections carry biases."""
    hx, gx, hd = spec.query_heads_for(dims), spec.extra_kv_heads, dims.head_dim
    count = (hx * hd + 2 * gx * hd) if dims.attention_bias else 0
    count += spec.extra_hidden_size if dims.o_bias else 0
    return count + ((2 * spec.extra_intermediate_size + spec.extra_hidden_size) if dims.mlp_bias else 0)


def count_inserted_parameters(dims: BaseDims, spec: OtterSpec) -> int:
    """Closed-form count of what the split layout adds (no zero blocks).

    Per layer, with D = d+dx the widened input, hx/gx extra heads of width hd:
      norms 2*dx + q hx*hd*D + k,v 2*gx*hd*D + o dx*(h+hx)*hd + gate,up 2*mx*D + down dx*(m+mx)
      (+ biases: hx*hd + 2*gx*hd when q/k/v have bias, dx for o bias, 2*mx + dx for MLP bias)
    Once: extra embedding V*dx + final norm dx + signal head dx*S (S = V for "vocab", 1 for "scalar").
    """
    d, dx = dims.hidden_size, spec.extra_hidden_size
    hd, h = dims.head_dim, dims.num_heads
    hx, gx, mx = spec.query_heads_for(dims), spec.extra_kv_heads, spec.extra_intermediate_size
    wide = d + dx
    per_layer = (
        2 * dx
        + hx * hd * wide
        + 2 * gx * hd * wide
        + dx * (h + hx) * hd
        + 2 * mx * wide
        + dx * (dims.intermediate_size + mx)
    )
    per_layer += _inserted_biases(dims, spec)
    once = dims.vocab_size * dx + dx + dx * spec.signal_size(dims)
    return dims.num_layers * per_layer + once


def count_fused_extra_parameters(dims: BaseDims, spec: OtterSpec, tied_embeddings: bool) -> int:
    """Parameters the fused checkpoint stores beyond the base model's, zero blocks included.

    Every projection W[out,in] becomes [out+out_x, in+in_x]; the lm_head gains dx zero columns and, when the
    base ties it to the embedding, becomes an untied copy (V*(d+dx) more).
    """
    d, dx = dims.hidden_size, spec.extra_hidden_size
    hd, h, g, m = dims.head_dim, dims.num_heads, dims.num_kv_heads, dims.intermediate_size
    hx, gx, mx = spec.query_heads_for(dims), spec.extra_kv_heads, spec.extra_intermediate_size
    V = dims.vocab_size

    def grow(out: int, out_x: int, inp: int, in_x: int) -> int:
        return (out + out_x) * (inp + in_x) - out * inp

    per_layer = (
        2 * dx
        + grow(h * hd, hx * hd, d, dx)
        + 2 * grow(g * hd, gx * hd, d, dx)
        + grow(d, dx, h * hd, hx * hd)
        + 2 * grow(m, mx, d, dx)
        + grow(d, dx, m, mx)
    )
    per_layer += _inserted_biases(dims, spec)
    lm_head = V * (d + dx) if tied_embeddings else V * dx
    once = V * dx + dx + lm_head + dx * spec.signal_size(dims)
    return dims.num_layers * per_layer + once
