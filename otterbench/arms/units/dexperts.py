"""The DExperts task (detoxification): `nucleus(logits, filter_p) + alpha*(expert - anti)`, greedy.

Three arms share the rule (`otterbench/arms/dexperts.py::steer`) and its knobs alpha and filter_p: the
separate expert and anti-expert uncached as the reference (`dexperts-faithful`) or cached, or Otter's signal
standing for `expert - anti`.
"""

from __future__ import annotations

from typing import Any

from otterbench.arms.spec import ArmSpec, CostModel, Knob, ModelsByRole, TaskSpec

ALPHA = Knob("alpha", float, 2.0, "DExperts alpha in logits + alpha*(expert - anti)")
FILTER_P = Knob(
    "filter_p",
    float,
    0.9,  # the DExperts reference's default
    "DExperts top-p nucleus kept of the base logits before the experts' shift (1: no filter)",
    minimum=0.0,
    open_minimum=True,
    maximum=1.0,
    range_hint="0 < filter_p <= 1 (1: no filter)",
)
KNOBS = (ALPHA, FILTER_P)
MODELS = ("base", "expert", "anti_expert")


def _faithful(models: ModelsByRole) -> Any:
    from otterbench.arms.dexperts import DExpertsFaithfulArm

    return DExpertsFaithfulArm(*(models[role] for role in MODELS))


def _cached(models: ModelsByRole) -> Any:
    from otterbench.arms.dexperts import DExpertsCachedArm

    return DExpertsCachedArm(*(models[role] for role in MODELS))


def _otter(models: ModelsByRole) -> Any:
    from otterbench.arms.dexperts import shift_signal_choice
    from otterbench.arms.otter import OtterArm

    return OtterArm("otter-dexperts", models["otter"], shift_signal_choice)


def _otter_rule(logits: Any, signal: Any, workload: Any) -> Any:
    from otterbench.arms.dexperts import shift_signal_choice

    return shift_signal_choice(logits, signal, workload)


def _teacher(models: Any, workload: Any, device: Any) -> Any:
    from otterbench.arms.teacher import collect_dexperts_teacher

    return collect_dexperts_teacher(models, workload, device)


def _forced_choice(logits: Any, signal: Any, workload: Any, candidates: Any) -> Any:
    from otterbench.arms.dexperts import shift_forced_choice

    return shift_forced_choice(logits, signal, workload, candidates)


def _faithful_cost(model: CostModel) -> Any:
    base = model.uncached("base")
    return base + model.uncached("expert", same_vocab=True) + model.uncached("anti_expert", same_vocab=True)


def _cached_cost(model: CostModel) -> Any:
    base = model.cached("base")
    return base + model.cached("expert", same_vocab=True) + model.cached("anti_expert", same_vocab=True)


_SEPARATE = {"role": "separate", "task": "dexperts", "needs": MODELS, "counterpart": "otter-dexperts"}
_SEPARATE |= {"knobs": KNOBS, "origin": __name__}
SPECS = (
    ArmSpec(
        "dexperts-faithful",
        build=_faithful,
        baseline="faithful",
        cost=_faithful_cost,
        cost_note="dexperts-faithful keeps no KV cache: it recomputes the whole context every token",
        **_SEPARATE,
    ),
    ArmSpec(
        "dexperts-cached",
        build=_cached,
        baseline="optimized",
        decides_as="dexperts-faithful",
        cost=_cached_cost,
        **_SEPARATE,
    ),
    ArmSpec(
        "otter-dexperts",
        "otter",
        "dexperts",
        ("otter",),
        _otter,
        knobs=KNOBS,
        cost=lambda m: m.otter(),
        choose=_otter_rule,
        origin=__name__,
    ),
)
TASKS = (TaskSpec("dexperts", "signal", MODELS, teacher=_teacher, forced_choice=_forced_choice),)
