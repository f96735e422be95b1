"""The distillation loss and its held-out figures, teacher-forced on the teacher's trajectory.

Both decision rules (`argmax logit + w*reward` over the top-k, `argmax nucleus(logits) + alpha*diff`) ignore a
constant added to every candidate at a step, so the loss is an MSE between signal and target after each is
centred over the step's candidates (ARGS: the k candidates; DExperts: the tokens of the base's nucleus, the
only ones the filtered rule can pick). Scale is kept, so the signal is used with the separate model's w / alpha.
`agreement` = fraction of steps where the student's rule picks the teacher's token; `spearman` = mean Spearman
rank correlation of signal vs teacher over the k candidates of a step (numpy, ties averaged).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.stats
import torch
import torch.nn.functional as F

from otterbench.arms.registry import task_spec
from otterbench.arms.teacher import Teacher
from otterbench.distillation.students import Student, step_outputs
from otterbench.workload import Workload


@dataclass
class DistillMetrics:
    """Held-out agreement with the teacher and rank correlation of signal vs teacher (teacher-forced)."""

    agreement: float  # fraction of steps where the student picks the teacher's token
    spearman: float  # mean over steps of Spearman rho(signal, teacher) over the k candidates
    loss: float  # the training loss on held-out data
    steps_evaluated: int


def _centred(x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    if keep is None:
        return x - x.mean(dim=-1, keepdim=True)
    weights = keep.float()
    mean = (x * weights).sum(dim=-1, keepdim=True) / weights.sum(dim=-1, keepdim=True)
    return (x - mean) * weights


def task_loss(teacher: Teacher, signal: torch.Tensor) -> torch.Tensor:
    """MSE between signal and teacher target, each centred over the step's candidates (shift-invariant)."""
    target = teacher.target.to(signal.device)
    if teacher.per_candidate:  # the target scores the k candidates (ARGS rewards)
        signal = signal.gather(-1, teacher.candidates.to(signal.device))
        return F.mse_loss(_centred(signal, None), _centred(target, None))
    keep = teacher.keep.to(signal.device) if teacher.keep is not None else None
    squared = (_centred(signal, keep) - _centred(target, keep)) ** 2
    return squared.mean() if keep is None else squared.sum() / keep.sum()


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two 1-D arrays; 0.0 when either is constant (no ranking to compare)."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(scipy.stats.spearmanr(a, b).statistic)


def chosen_by_student(
    teacher: Teacher, logits: torch.Tensor, signal: torch.Tensor, workload: Workload
) -> torch.Tensor:
    """The student's token [b,N] at each teacher-forced step, by its task's own rule (its TaskSpec)."""
    choose = task_spec(teacher.task).forced_choice
    return choose(logits, signal, workload, teacher.candidates.to(logits.device))


@torch.inference_mode()
def evaluate(
    student: Student, teacher: Teacher, workload: Workload, device: Any, batch_size: int = 8
) -> DistillMetrics:
    """Agreement, Spearman and loss of `student` against `teacher`, teacher-forced on its trajectory."""
    agree, rhos, losses, n = [], [], [], len(teacher.sequences)
    for start in range(0, n, batch_size):
        part = teacher.subset(range(start, min(n, start + batch_size)))
        logits, signal = step_outputs(
            student, part.sequences, workload.max_new_tokens, workload.pad_token_id, device
        )
        agree.append((chosen_by_student(part, logits, signal, workload).cpu() == part.chosen).flatten())
        losses.append(float(task_loss(part, signal)) * len(part.sequences))
        cand = part.candidates.to(signal.device)
        ranked_signal = signal.gather(-1, cand).cpu().numpy().reshape(-1, workload.k)
        target = part.target.to(signal.device)
        ranked_target = (target if part.per_candidate else target.gather(-1, cand)).cpu().numpy()
        rhos.extend(spearman(a, b) for a, b in zip(ranked_signal, ranked_target.reshape(-1, workload.k)))
    agreement = torch.cat(agree).float().mean().item()
    return DistillMetrics(agreement, float(np.mean(rhos)), sum(losses) / n, len(rhos))
