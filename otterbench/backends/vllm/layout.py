"""What an Otter engine's logits row holds: one home for the switch and the column layout.

With the switch on (`hf_overrides={SIGNAL_SWITCH: True}`), the Otter model's `compute_logits` returns
`[base logits (V) | signal (V)]` per row: the signal head's outputs appended as V extra columns, gathered
across tensor-parallel ranks by vLLM's own logits path. The logits processor then cuts every row back to the
first V columns (the arm's rule where a request asks for one, the base logits otherwise), so no id >= V is
ever sampled. With the switch off the model returns the V base logits alone: the plugin then serves exactly
the base model's responses.
"""

from __future__ import annotations

SIGNAL_SWITCH = "otter_signal_logits"  # a config attribute, set per engine through hf_overrides
GUIDANCE_ARG = "otter_guidance"  # SamplingParams.extra_args key: {"arm": ..., knobs of its rule}
