"""Distillation: train only Otter's inserted parameters (base frozen) to reproduce a separate model's signal.

Teacher data is collected once, in inference mode, along the teacher's own greedy trajectory:
- ARGS: at every step the top-k candidates of the base logits and the reward model's reward of
  `prefix + candidate` (the trajectory is the ARGS one, so training sees the prefixes ARGS decides on).
- DExperts: at every step the full `expert - anti-expert` logits (the trajectory is the DExperts one).
Both decision rules (`argmax logit + w*reward` over the top-k, `argmax logits + alpha*diff`) ignore a constant
added to every candidate at a step, so the loss is an MSE between the signal and the target after each is
centred over its candidates (ARGS: the k candidates; DExperts: the vocabulary). Scale is kept, so the signal
can be used with the same w / alpha as the separate model.

Metrics on held-out prompts, teacher-forced on the teacher's trajectory, before and after training:
`agreement` (fraction of steps where Otter's rule picks the teacher's token) and `spearman` (mean Spearman
rank correlation between signal and teacher over the k candidates of each step, numpy, ties averaged).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.stats
import torch
import torch.nn.functional as F

from otterbench.arms.args import SharedPrefixRewardScorer
from otterbench.arms.base import Tally
from otterbench.arms.decoding import CachedLM, args_choice, greedy
from otterbench.arms.dexperts import steer
from otterbench.otter import OtterModel, OtterSpec, insert_otter, save_otter
from otterbench.run.workload import Batch, Workload, positions_from_mask

Task = Literal["args", "dexperts"]
TASKS: tuple[str, ...] = ("args", "dexperts")


@dataclass
class Teacher:
    """What the separate model(s) said along their own trajectory, for n prompts and N steps."""

    task: str
    sequences: list[list[int]]  # prompt + N generated tokens, unpadded
    candidates: torch.Tensor  # [n,N,k] top-k token ids of the base logits at each step
    chosen: torch.Tensor  # [n,N] the teacher's token at each step
    target: torch.Tensor  # ARGS: rewards [n,N,k]; DExperts: expert - anti logits [n,N,V]

    def subset(self, rows: Sequence[int]) -> Teacher:
        index = torch.as_tensor(list(rows), dtype=torch.long)
        return Teacher(
            self.task,
            [self.sequences[i] for i in rows],
            self.candidates[index],
            self.chosen[index],
            self.target[index],
        )


@dataclass
class DistillMetrics:
    """Held-out agreement with the teacher and rank correlation of signal vs teacher (teacher-forced)."""

    agreement: float  # fraction of steps where Otter picks the teacher's token
    spearman: float  # mean over steps of Spearman rho(signal, teacher) over the k candidates
    loss: float  # the training loss on held-out data
    steps_evaluated: int


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
    otter: OtterModel | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (everything but the model)."""
        data = asdict(self)  # deep-copies fields; the model is dropped below
        data.pop("otter")
        return data


def _args_batch(models: Any, batch: Batch, workload: Workload) -> tuple[list, list, list]:
    """One batch of ARGS decoding: (tokens, candidates, rewards) per step."""
    tally = Tally()
    lm, scorer = CachedLM(models.base, "llm", tally), SharedPrefixRewardScorer(models.reward_model, tally)
    scorer.start(batch, workload.k)
    out, tokens, cands, rewards = lm.start(batch), [], [], []

    def rewards_of(candidates: torch.Tensor) -> torch.Tensor:
        cands.append(candidates)
        rewards.append(scorer.score(candidates).float())
        return rewards[-1]

    for step in range(workload.max_new_tokens):
        if step:
            out = lm.feed(tokens[-1])
        token, pick = args_choice(out.logits[:, -1], workload.k, workload.weight, rewards_of)
        tokens.append(token)
        if step + 1 < workload.max_new_tokens:
            scorer.keep(pick)
    return tokens, cands, rewards


@torch.inference_mode()
def collect_args_teacher(models: Any, workload: Workload, device: torch.device | str) -> Teacher:
    """Follow ARGS (shared-prefix reward model, the arms' decisions) and record candidates and rewards."""
    records: dict = {"cand": [], "reward": [], "chosen": [], "seq": []}
    for batch in workload.batches(device):
        _append(records, batch.prompt_indices, workload, *_args_batch(models, batch, workload))
    return _teacher("args", records)


@torch.inference_mode()
def collect_dexperts_teacher(models: Any, workload: Workload, device: torch.device | str) -> Teacher:
    """Follow DExperts (cached) and record the expert - anti-expert logits at every step."""
    tally, records = Tally(), {"cand": [], "reward": [], "chosen": [], "seq": []}
    roles = (("base", "llm"), ("expert", "expert"), ("anti_expert", "anti_expert"))
    for batch in workload.batches(device):
        lms = [CachedLM(getattr(models, attr), role, tally) for attr, role in roles]
        tokens, cands, diffs = [], [], []
        for step in range(workload.max_new_tokens):
            base, expert, anti = (
                (lm.feed(tokens[-1]) if step else lm.start(batch)).logits[:, -1].float() for lm in lms
            )
            cands.append(base.topk(workload.k, dim=-1).indices)
            diffs.append(expert - anti)
            tokens.append(greedy(steer(base, expert, anti, workload.alpha)))
        _append(records, batch.prompt_indices, workload, tokens, cands, diffs)
    return _teacher("dexperts", records)


def _append(
    records: dict, indices: Sequence[int], workload: Workload, tokens: list, cands: list, targets: list
) -> None:
    generated = torch.cat(tokens, dim=1).cpu()  # [B,N]
    records["chosen"].append(generated)
    records["cand"].append(torch.stack(cands, dim=1).cpu())  # [B,N,k]
    records["reward"].append(torch.stack(targets, dim=1).cpu())  # [B,N,k] or [B,N,V]
    for row, index in enumerate(indices):
        records["seq"].append(list(workload.prompt_ids[index]) + generated[row].tolist())


def _teacher(task: str, records: dict) -> Teacher:
    # clone() outside inference mode: autograd may save these tensors as loss targets
    return Teacher(
        task,
        records["seq"],
        torch.cat(records["cand"]).clone(),
        torch.cat(records["chosen"]).clone(),
        torch.cat(records["reward"]).clone(),
    )


def step_outputs(otter: OtterModel, sequences: list[list[int]], steps: int, pad_id: int, device: Any) -> Any:
    """Logits and signal [B,N,V] at the N decision positions of full sequences, in one uncached forward."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, seq in enumerate(sequences):
        ids[row, width - len(seq) :] = torch.tensor(seq)
        mask[row, width - len(seq) :] = 1
    ids, mask = ids.to(device), mask.to(device)
    out = otter(input_ids=ids, attention_mask=mask, position_ids=positions_from_mask(mask))
    # left padding puts every sequence's end at column width-1; decision t reads the column before token t
    window = slice(width - steps - 1, width - 1)
    return out.logits[:, window].float(), out.signal[:, window].float()


def _centred(x: torch.Tensor) -> torch.Tensor:
    return x - x.mean(dim=-1, keepdim=True)


def task_loss(teacher: Teacher, signal: torch.Tensor) -> torch.Tensor:
    """MSE between signal and teacher target, each centred over the step's candidates (shift-invariant)."""
    if teacher.task == "args":
        signal = signal.gather(-1, teacher.candidates.to(signal.device))
    return F.mse_loss(_centred(signal), _centred(teacher.target.to(signal.device)))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two 1-D arrays; 0.0 when either is constant (no ranking to compare)."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(scipy.stats.spearmanr(a, b).statistic)


def _chosen_by_otter(
    teacher: Teacher, logits: torch.Tensor, signal: torch.Tensor, workload: Workload
) -> torch.Tensor:
    """Otter's token [b,N] at each teacher-forced step, by the arm's own rule."""
    if teacher.task == "args":
        cand = teacher.candidates.to(logits.device)
        scores = logits.gather(-1, cand) + workload.weight * signal.gather(-1, cand)
        return cand.gather(-1, scores.argmax(dim=-1, keepdim=True)).squeeze(-1)
    return (logits + workload.alpha * signal).argmax(dim=-1)


@torch.inference_mode()
def evaluate(
    otter: OtterModel, teacher: Teacher, workload: Workload, device: Any, batch_size: int = 8
) -> DistillMetrics:
    """Agreement, Spearman and loss of `otter` against `teacher`, teacher-forced on its trajectory."""
    agree, rhos, losses, n = [], [], [], len(teacher.sequences)
    for start in range(0, n, batch_size):
        part = teacher.subset(range(start, min(n, start + batch_size)))
        logits, signal = step_outputs(
            otter, part.sequences, workload.max_new_tokens, workload.pad_token_id, device
        )
        agree.append((_chosen_by_otter(part, logits, signal, workload).cpu() == part.chosen).flatten())
        losses.append(float(task_loss(part, signal)) * len(part.sequences))
        cand = part.candidates.to(signal.device)
        ranked_signal = signal.gather(-1, cand).cpu().numpy().reshape(-1, workload.k)
        target = part.target.to(signal.device)
        ranked_target = (target if part.task == "args" else target.gather(-1, cand)).cpu().numpy()
        rhos.extend(spearman(a, b) for a, b in zip(ranked_signal, ranked_target.reshape(-1, workload.k)))
    agreement = torch.cat(agree).float().mean().item()
    return DistillMetrics(agreement, float(np.mean(rhos)), sum(losses) / n, len(rhos))


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
    otter: OtterModel,
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
    """Adam on the inserted parameters only, `steps` seeded minibatches; returns the loss of each step."""
    params = [p for p in otter.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for step in range(steps):
        rows = torch.randperm(len(teacher.sequences), generator=generator)[:batch_size].tolist()
        part = teacher.subset(rows)
        _, signal = step_outputs(
            otter, part.sequences, workload.max_new_tokens, workload.pad_token_id, device
        )
        loss = task_loss(part, signal)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if on_step is not None:
            on_step(step + 1, losses[-1])
    return losses


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
    return Workload(
        prompt_ids=tuple(tuple(p) for p in prompts),
        batch_size=batch_size,
        vocab_size=int(models.base.config.vocab_size),
        pad_token_id=0 if pad is None else int(pad),
        seed=seed,
        **knobs,
    )


def _check_inputs(task: str, models: Any, steps: Any, lr: Any, spec: OtterSpec) -> None:
    if task not in TASKS:
        raise ValueError(f"task={task!r} is invalid: choose one of {', '.join(TASKS)}")
    needed = ("base", "reward_model") if task == "args" else ("base", "expert", "anti_expert")
    missing = [role for role in needed if getattr(models, role, None) is None]
    if missing:
        raise ValueError(f"distilling task {task} needs model(s) {', '.join(missing)}, which are missing")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps={steps!r} is invalid: use an integer >= 0")
    if not lr > 0:
        raise ValueError(f"lr={lr!r} is invalid: use a positive learning rate")
    if spec.signal != "vocab":
        raise ValueError(f"OtterSpec.signal={spec.signal!r} cannot be distilled here: use signal='vocab'")


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
    batch_size: int = 8,
    device: torch.device | str = "cpu",
    on_step: Callable[[int, float], None] | None = None,
) -> DistillReport:
    """Insert Otter into models.base and train it on the teacher's signal; report held-out before/after."""
    spec = spec or OtterSpec.from_ratio(models.base.config, signal="vocab")
    _check_inputs(task, models, steps, lr, spec)
    knobs = {"max_new_tokens": max_new_tokens, "k": k, "weight": weight, "alpha": alpha}
    workload = _workload(models, prompts, knobs, batch_size, seed)
    train_rows, held_rows = split_prompts(workload.num_prompts, held_out_fraction, seed)
    started = time.perf_counter()
    collect = collect_args_teacher if task == "args" else collect_dexperts_teacher
    teacher = collect(models, workload, device)
    collect_s = time.perf_counter() - started
    otter = insert_otter(models.base, spec)
    held_out, training = teacher.subset(held_rows), teacher.subset(train_rows)
    before = evaluate(otter, held_out, workload, device)
    started = time.perf_counter()
    losses = train(
        otter, training, workload, steps=steps, lr=lr, seed=seed, batch_size=batch_size, device=device,
        on_step=on_step,
    )  # fmt: skip
    train_s = time.perf_counter() - started
    after = evaluate(otter, held_out, workload, device)
    return DistillReport(
        task=task, spec=spec.to_dict(), steps=steps, lr=lr, seed=seed, held_out_fraction=held_out_fraction,
        train_prompts=len(train_rows), held_out_prompts=len(held_rows), before=before, after=after,
        train_losses=losses, collect_s=collect_s, train_s=train_s, otter=otter, **knobs,
    )  # fmt: skip


def save_distilled(report: DistillReport, directory: str | Path) -> Path:
    """Write the trained insertion (save_otter) and distill_report.json into `directory`; returns it."""
    if report.otter is None:
        raise ValueError("this DistillReport carries no model to save (report.otter is None)")
    directory = Path(directory)
    save_otter(
        report.otter,
        directory,
        metadata={"distilled": True, "distill": {"task": report.task, "steps": report.steps}},
    )
    (directory / "distill_report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return directory
