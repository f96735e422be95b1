"""distill_suite: the library entry point of `otterbench distill`, one suite's separate model(s) into Otter.

Checks the suite, profile and numbers as a run would (preflight, one-line errors), loads the suite's models
once, then trains: the speculative task (accel) both drafts on the base's own continuations (accel.py);
the others Otter's signal on the separate model's (and, for ARGS, the token-level reward model beside it:
distill.py). Saves the result to `out` and returns the report; progress comes back through `on_step`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from otterbench.arms.registry import model_roles, task_spec
from otterbench.distillation.accel import (
    CORPUS_PROMPT_TOKENS,
    corpus_prompts,
    distill_accel,
    save_accel_distilled,
)
from otterbench.distillation.distill import distill_otter, save_distilled
from otterbench.env import resolve_device
from otterbench.models.fingerprint import weights_fingerprint
from otterbench.models.loading import load_model_set
from otterbench.otter import OtterSpec
from otterbench.otter.spec import DEFAULT_RATIO
from otterbench.run.config import resolve_run_config
from otterbench.run.preflight import PreflightError, preflight
from otterbench.run.suite import load_prompts, load_suite

OnStep = Callable[[str, int, float], None]  # (student: "otter", "draft" or "token", step, loss)


@dataclass(frozen=True)
class DistillConfig:
    """What `otterbench distill` trains: the suite and profile, the insertion, the training run."""

    suite: str = "safety"
    profile: str | None = None
    out: Path | None = None  # default: ./distilled/<suite>-<profile>
    steps: int = 150
    lr: float = 1e-3
    ratio: float = DEFAULT_RATIO
    init: str = "copy"
    held_out: float = 0.25  # fraction of the prompts held out for the before/after figures
    batch_size: int = 8
    seed: int = 0
    device: str = "auto"
    max_new_tokens: int | None = None  # default: the suite's N
    token_rm: bool = True  # ARGS: also train the suite's token-level reward model


@dataclass
class DistillOutcome:
    """Where the distilled parameters went and the report of their training (DistillReport or accel's)."""

    task: str
    out: Path
    report: Any
    kind: str = "signal"  # the task's TaskSpec.distill: "signal" or "drafts"


def _load(config: DistillConfig) -> tuple[Any, Any, list[str], Any]:
    suite = load_suite(config.suite)
    profile = config.profile or suite.default_profile
    device = resolve_device(config.device)
    needs = model_roles(suite.arms) - {"otter"}
    side = task_spec(suite.task).side_student
    if side and side in suite.profiles[profile]:
        needs |= {side}  # trained beside Otter on the same teacher
    models = load_model_set(profile, needs=needs, profiles=suite.profiles, device=device)
    return suite, models, load_prompts(suite.prompts_path), device


def _own_problems(config: DistillConfig) -> list[str]:
    """distill's own numbers a run has not: training steps and batch (no weights are "distilled" in 0 steps)."""
    counts = {
        "--steps": (config.steps, "Adam steps"),
        "--batch-size": (config.batch_size, "sequences per step"),
    }
    return [
        f"{flag}={value!r} is invalid: pass an integer >= 1 ({what})"
        for flag, (value, what) in counts.items()
        if isinstance(value, bool) or not isinstance(value, int) or value < 1
    ]


def _check(config: DistillConfig) -> None:
    """Every bad input at once, as a run checks it (ValueError with one line each)."""
    own = _own_problems(config)
    numbers = {"--lr": config.lr, "--ratio": config.ratio, "--held-out": config.held_out}
    try:
        run = resolve_run_config(
            config.suite,
            out_dir=config.out or Path("distilled"),
            profile=config.profile,
            device=config.device,
        )
        preflight(run, numbers)
    except PreflightError as error:
        raise PreflightError(own + error.problems) from None
    except ValueError as error:
        raise PreflightError([*own, *str(error).splitlines()]) from None
    if own:
        raise PreflightError(own)


def distill_suite(config: DistillConfig, on_step: OnStep | None = None) -> DistillOutcome:
    """Distill one suite's separate model(s) into Otter's inserted parameters, save them, report."""
    _check(config)
    suite, models, prompts, device = _load(config)
    spec = OtterSpec.from_ratio(models.base.config, ratio=config.ratio, signal="vocab", init=config.init)
    out = config.out or Path("distilled") / f"{suite.name}-{models.profile}"
    config = replace(config, out=out, max_new_tokens=config.max_new_tokens or suite.max_new_tokens)
    step = on_step or (lambda student, done, loss: None)
    kind = task_spec(suite.task).distill
    if kind == "drafts":
        report = _distill_drafts(config, models, prompts, spec, device, step)
    else:
        report = distill_otter(
            models, prompts, suite.task, spec, steps=config.steps, lr=config.lr, seed=config.seed,
            held_out_fraction=config.held_out, max_new_tokens=config.max_new_tokens, k=suite.k,
            weight=suite.weight, alpha=suite.alpha, batch_size=config.batch_size, filter_p=suite.filter_p,
            device=device, on_step=lambda done, loss: step("otter", done, loss), token_student=config.token_rm,
        )  # fmt: skip
        save_distilled(report, out, tokenizer=models.tokenizer, base_weights=_base_weights(models))
    return DistillOutcome(suite.task, out, report, kind)


def _base_weights(models: Any) -> str | None:
    """The hash of the base's weights files the insertion is saved with: a run on another base is refused."""
    return weights_fingerprint(models.sources.get("base", ""))


def _distill_drafts(
    config: DistillConfig, models: Any, prompts: list[str], spec: OtterSpec, device: Any, step: OnStep
) -> Any:
    """accel: Otter's draft (signal -> token t+2) and the separate draft model, on the base's continuations."""

    def encode(texts: list[str]) -> list[list[int]]:
        return [models.tokenizer(text, add_special_tokens=True)["input_ids"] for text in texts]

    extra = [ids[:CORPUS_PROMPT_TOKENS] for ids in encode(corpus_prompts(prompts))]
    report = distill_accel(
        models, encode(prompts), spec, extra_train_ids=extra, on_step=step, steps=config.steps, lr=config.lr,
        seed=config.seed, held_out_fraction=config.held_out, max_new_tokens=config.max_new_tokens,
        batch_size=config.batch_size, device=device,
    )  # fmt: skip
    save_accel_distilled(report, config.out, prompts, base_weights=_base_weights(models))
    return report
