"""The model roles a run can load, declared once: how each loads, its tiny stand-in, its command-line help.

A role is a slot an arm fills with a model: `base` (the LLM), `reward_model` (ARGS), `expert` and
`anti_expert` (DExperts), `token_reward_model` (args-token), `draft` (speculative decoding). Suites'
profiles, the `--base`/`--reward-model`/... options, the loader, the preflight checks, the planner and the
results' `models` block all read this list; an arm that brings a new kind of model registers its role here
(`register_role`) from its own module. Torch-free: the command line reads it at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Head = Literal["causal-lm", "reward"]  # a causal LM, or a one-label sequence classifier (a reward model)


@dataclass(frozen=True)
class ModelRole:
    """One slot of a run's model set."""

    name: str
    head: Head  # how it loads: AutoModelForCausalLM, or AutoModelForSequenceClassification with one label
    help: str  # the --ROLE option's help text
    tiny_seed_index: int  # its seed offset in the tiny profile: fixed, so adding a role changes no other
    tiny_sizes: Literal["base", "draft"] = "base"  # the tiny profile's size for it
    task_noun: str = "ARGS"  # the method named when its vocabulary differs from the base's
    walked: bool = False  # otterbench's own code walks its layers: it must be a supported family


ROLES: dict[str, ModelRole] = {
    role.name: role
    for role in (
        ModelRole(
            "base",
            "causal-lm",
            "base LLM: hub id (cached locally) or local path; overrides the profile",
            0,
            walked=True,
        ),
        ModelRole("reward_model", "reward", "ARGS reward model: hub id or local path", 1, walked=True),
        ModelRole(
            "token_reward_model",
            "causal-lm",
            "args-token's token-level reward model (a causal LM): hub id or local path",
            4,
        ),
        ModelRole("expert", "causal-lm", "DExperts expert: hub id or local path", 2, task_noun="DExperts"),
        ModelRole(
            "anti_expert", "causal-lm", "DExperts anti-expert: hub id or local path", 3, task_noun="DExperts"
        ),
        ModelRole(
            "draft",
            "causal-lm",
            "speculative decoding's draft model: hub id or local path (e.g. OUT/draft from distill)",
            5,
            tiny_sizes="draft",
            task_noun="Speculative decoding",
        ),
    )
}
# the inserted LLM an Otter arm runs: built by the run from `base`, never loaded from a profile
OTTER_ROLE = "otter"
BASE_ROLE = "base"  # the LLM every arm runs; every other role is planned with its shape when not given


def register_role(role: ModelRole) -> ModelRole:
    """Add a model role (an arm's own kind of model); its name and tiny seed must be new."""
    if role.name in ROLES or role.name == OTTER_ROLE:
        raise ValueError(f"model role {role.name!r} is already registered")
    if role.tiny_seed_index in {known.tiny_seed_index for known in ROLES.values()}:
        raise ValueError(f"model role {role.name!r}: tiny_seed_index {role.tiny_seed_index} is taken")
    ROLES[role.name] = role
    return role


def role_names() -> tuple[str, ...]:
    """Every loadable role, `base` first, in declaration order."""
    return tuple(ROLES)


def model_role(name: str) -> ModelRole:
    """The role called `name`; unknown names raise ValueError listing the known ones."""
    if name not in ROLES:
        raise ValueError(f"role {name!r} is not one of {', '.join(ROLES)}")
    return ROLES[name]


def role_flag(role: str) -> str:
    """The command-line option that names a role's model: reward_model -> --reward-model."""
    return f"--{role.replace('_', '-')}"
