"""Distillation: train a student on a separate model's signal, the base frozen; report held-out before/after.

The students (otterbench/distillation/students.py): Otter's inserted parameters, and for ARGS also a separate
token-level reward model (the args-token arm's scorer), trained on the same teacher (otterbench.arms.teacher.py),
loss, steps, learning rate and seeded minibatches, so their quality compares on equal terms. The loss and the
held-out metrics are in otterbench/distillation/metrics.py; the free-running quality of the guided arms on the
held-out prompts (agreement with ARGS, mean reward) in otterbench/distillation/quality.py.
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from otterbench.arms.registry import counterparts, knob_defaults, task_spec
from otterbench.arms.spec import TaskSpec
from otterbench.arms.teacher import Teacher
from otterbench.distillation.metrics import DistillMetrics, evaluate, spearman, task_loss
from otterbench.distillation.students import OtterStudent, Student, TokenRewardStudent, fit, step_outputs
from otterbench.otter import OtterModel, OtterSpec, insert_otter, save_otter
from otterbench.workload import Workload

__all__ = ["DistillReport", "distill_otter", "save_distilled", "spearman", "split_prompts"]

Task = str  # a task whose TaskSpec distils Otter's signal (otterbench/arms/units/: args, dexperts)
TOKEN_RM_DIR = "token_reward_model"  # where save_distilled puts the distilled token-level reward model
QUALITY_FILE = "quality.json"


@dataclass
class StudentResult:
    """One student's before/after figures on the held-out prompts and its training curve."""

    before: DistillMetrics
    after: DistillMetrics
    train_losses: list[float]
    train_s: float


@dataclass
class DistillReport:
    """Settings and before/after figures of one distillation; `otter` is the trained model (not saved here)."""

    task: str
    spec: dict[str, Any]
    steps: int
    lr: float
    seed: int
    held_out_fraction: float
    train_prompts: int
    held_out_prompts: int
    max_new_tokens: int
    k: int
    weight: float
    alpha: float
    before: DistillMetrics
    after: DistillMetrics
    train_losses: list[float]
    collect_s: float
    train_s: float
    filter_p: float = 0.9
    token: StudentResult | None = None  # the token-level reward model student (ARGS only)
    quality: dict[str, Any] | None = (
        None  # free-running quality of the guided arms (otterbench/distillation/quality.py)
    )
    otter: OtterModel | None = field(default=None, repr=False)
    token_reward_model: Any = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (everything but the models)."""
        otter, token_model = self.otter, self.token_reward_model
        self.otter = self.token_reward_model = None  # asdict deep-copies: keep the models out of it
        try:
            data = asdict(self)
        finally:
            self.otter, self.token_reward_model = otter, token_model
        data.pop("otter")
        data.pop("token_reward_model")
        return data


def split_prompts(num_prompts: int, held_out_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A seeded (train, held-out) split of prompt indices; both sides get at least one prompt."""
    if not 0 < held_out_fraction < 1:
        raise ValueError(f"held_out_fraction={held_out_fraction!r} is invalid: choose a number in (0, 1)")
    if num_prompts < 2:
        raise ValueError(f"distillation got {num_prompts} prompt(s): it needs at least 2 (train + held out)")
    order = list(range(num_prompts))
    random.Random(seed).shuffle(order)
    held = min(num_prompts - 1, max(1, round(num_prompts * held_out_fraction)))
    return sorted(order[held:]), sorted(order[:held])


def train(
    student: Student,
    teacher: Teacher,
    workload: Workload,
    *,
    steps: int,
    lr: float,
    seed: int,
    batch_size: int,
    device: Any,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Adam on the student's trainable parameters, `steps` seeded minibatches; returns each step's loss."""

    def loss_of(rows: list[int]) -> torch.Tensor:
        part = teacher.subset(rows)
        _, signal = step_outputs(
            student, part.sequences, workload.max_new_tokens, workload.pad_token_id, device
        )
        return task_loss(part, signal)

    return fit(
        student.trainable(),
        len(teacher.sequences),
        loss_of,
        steps=steps,
        lr=lr,
        seed=seed,
        batch_size=batch_size,
        on_step=on_step,
    )


def _workload(
    models: Any, prompts: Sequence[Any], knobs: dict[str, Any], batch_size: int, seed: int
) -> Workload:
    """The teacher's workload: token ids (tokenised with models.tokenizer when text), the arms' knobs."""
    if prompts and isinstance(prompts[0], str):
        tokenizer = getattr(models, "tokenizer", None)
        if tokenizer is None:
            raise ValueError(
                "prompts are text but models.tokenizer is missing: pass token ids or a tokenizer"
            )
        prompts = [tokenizer(text, add_special_tokens=True)["input_ids"] for text in prompts]
    pad = models.base.config.pad_token_id
    values = dict(knobs)
    return Workload(
        prompt_ids=tuple(tuple(p) for p in prompts),
        batch_size=batch_size,
        max_new_tokens=values.pop("max_new_tokens"),
        vocab_size=int(models.base.config.vocab_size),
        pad_token_id=0 if pad is None else int(pad),
        seed=seed,
        knobs={**knob_defaults(), **values},
    )


def _check_inputs(task: str, models: Any, steps: Any, lr: Any, spec: OtterSpec) -> TaskSpec:
    """The task's spec, once every input is known good."""
    teacher = task_spec(task, distill="signal")
    missing = [role for role in teacher.teacher_needs if getattr(models, role, None) is None]
    if missing:
        raise ValueError(f"distilling task {task} needs model(s) {', '.join(missing)}, which are missing")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps={steps!r} is invalid: use an integer >= 0")
    if not lr > 0:
        raise ValueError(f"lr={lr!r} is invalid: use a positive learning rate")
    if spec.signal != "vocab":
        raise ValueError(f"OtterSpec.signal={spec.signal!r} cannot be distilled here: use signal='vocab'")
    return teacher


def _train_student(
    student: Student, training: Teacher, held_out: Teacher, workload: Workload, settings: dict[str, Any]
) -> StudentResult:
    """Before/after figures around `train` with the shared settings (steps, lr, seed, batch size, device)."""
    before = evaluate(student, held_out, workload, settings["device"])
    started = time.perf_counter()
    losses = train(student, training, workload, **settings)
    train_s = time.perf_counter() - started
    return StudentResult(before, evaluate(student, held_out, workload, settings["device"]), losses, train_s)


def distill_otter(
    models: Any,
    prompts: Sequence[Sequence[int]] | Sequence[str],
    task: Task,
    spec: OtterSpec | None = None,
    steps: int = 200,
    lr: float = 1e-3,
    seed: int = 0,
    held_out_fraction: float = 0.25,
    *,
    max_new_tokens: int = 16,
    k: int = 10,
    weight: float = 1.0,
    alpha: float = 2.0,
    filter_p: float = 0.9,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
    on_step: Callable[[int, float], None] | None = None,
    token_student: bool = True,
) -> DistillReport:
    """Insert Otter into models.base and train it on the teacher's signal; report held-out before/after.

    For ARGS with a `models.token_reward_model` (and `token_student`), a copy of that model is trained the
    same way, and the guided arms' free-running quality on the held-out prompts is measured.
    """
    spec = spec or OtterSpec.from_ratio(models.base.config, signal="vocab")
    task_of = _check_inputs(task, models, steps, lr, spec)
    knobs = {"max_new_tokens": max_new_tokens, "k": k, "weight": weight, "alpha": alpha, "filter_p": filter_p}
    workload = _workload(models, prompts, knobs, batch_size, seed)
    train_rows, held_rows = split_prompts(workload.num_prompts, held_out_fraction, seed)
    started = time.perf_counter()
    teacher = task_of.teacher(models, workload, device)
    collect_s = time.perf_counter() - started
    held_out, training = teacher.subset(held_rows), teacher.subset(train_rows)
    settings = {"steps": steps, "lr": lr, "seed": seed, "batch_size": batch_size, "device": device}
    otter = insert_otter(models.base, spec)
    result = _train_student(
        OtterStudent(otter), training, held_out, workload, {**settings, "on_step": on_step}
    )
    token, token_model, quality = None, None, None
    side = task_of.side_student
    if side and token_student and getattr(models, side, None) is not None:
        token_model = copy.deepcopy(getattr(models, side))
        token = _train_student(
            TokenRewardStudent(models.base, token_model), training, held_out, workload, settings
        )
        token_model.eval().requires_grad_(False)
        from otterbench.distillation.quality import measure_quality, reference_arm, token_arm

        quality = measure_quality(models, otter, token_model, workload, held_rows, device)
        forced = {counterparts()[reference_arm()]: result.after.agreement, token_arm(): token.after.agreement}
        for row in quality["arms"]:
            row["teacher_forced_agreement"] = forced.get(row["arm"])
    return DistillReport(
        task=task, spec=spec.to_dict(), steps=steps, lr=lr, seed=seed, held_out_fraction=held_out_fraction,
        train_prompts=len(train_rows), held_out_prompts=len(held_rows), before=result.before,
        after=result.after, train_losses=result.train_losses, collect_s=collect_s, train_s=result.train_s,
        token=token, quality=quality, otter=otter, token_reward_model=token_model, **knobs,
    )  # fmt: skip


def save_distilled(
    report: DistillReport, directory: str | Path, tokenizer: Any = None, base_weights: str | None = None
) -> Path:
    """Write the trained insertion (save_otter, with `base_weights`: the base's weights hash), distill_report.json
    and, when present, the distilled token-level reward model (a Hugging Face checkpoint in
    `token_reward_model/`) and quality.json."""
    if report.otter is None:
        raise ValueError("this DistillReport carries no model to save (report.otter is None)")
    directory = Path(directory)
    save_otter(
        report.otter,
        directory,
        metadata={"distilled": True, "distill": {"task": report.task, "steps": report.steps}},
        base_weights=base_weights,
    )
    (directory / "distill_report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    if report.token_reward_model is not None:
        report.token_reward_model.save_pretrained(directory / TOKEN_RM_DIR)
        if tokenizer is not None:
            tokenizer.save_pretrained(directory / TOKEN_RM_DIR)
    if report.quality is not None:
        (directory / QUALITY_FILE).write_text(json.dumps(report.quality, indent=2) + "\n")
    return directory
