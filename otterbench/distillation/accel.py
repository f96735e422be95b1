"""Distillation for the accel task: both drafts learn the base's own greedy continuations, on equal terms.

The teacher is the base model itself: its greedy continuation of every prompt (the `base` arm's tokens, the
very output speculative decoding must reproduce). Two drafts train on the same sequences, targets, minibatches,
optimiser, learning rate and number of steps:
- Otter (backbone frozen, only the inserted tensors train): the signal at position t is trained with
  cross-entropy to give token t+2 (what `otter-spec` drafts with it);
- the separate draft model (all its weights; it is a model of its own): its logits at t give token t+1.
Both are scored on the same targets: generated tokens 2..N (the first token is never drafted; the base
picks it from the prompt). `acceptance` is their top-1 accuracy on held-out prompts, teacher-forced on the
base's trajectory — the rate at which a one-token draft would be accepted, since a verified output always
follows that trajectory.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from otterbench.arms.greedy import BaseArm
from otterbench.arms.registry import knob_defaults
from otterbench.distillation.distill import split_prompts
from otterbench.distillation.students import fit, left_pad
from otterbench.otter import OtterModel, OtterSpec, insert_otter, save_otter
from otterbench.workload import Workload, positions_from_mask

CORPUS_PATH = Path(__file__).resolve().parents[1] / "data" / "corpus.txt"
CORPUS_PROMPT_TOKENS = 24  # corpus lines are cut to about a suite prompt's length
DRAFT_DIR = "draft"  # the trained separate draft model, a Hugging Face checkpoint: `run --draft OUT/draft`
HELD_OUT_FILE = "held_out.jsonl"  # the held-out prompts, for `run --prompts OUT/held_out.jsonl`
REPORT_FILE = "distill_report.json"


@dataclass
class DraftScores:
    """Held-out figures of one draft, teacher-forced on the base's greedy continuations."""

    acceptance: float  # top-1 accuracy on generated tokens 2..N
    loss: float  # mean cross-entropy on those targets
    targets: int


@dataclass
class AccelDistillReport:
    """Settings and before/after figures of both drafts; `otter` and `draft` are the trained models."""

    task: str
    spec: dict[str, Any]
    steps: int
    lr: float
    seed: int
    held_out_fraction: float
    train_prompts: int
    held_out_prompts: int
    max_new_tokens: int
    otter_before: DraftScores
    otter_after: DraftScores
    draft_before: DraftScores
    draft_after: DraftScores
    otter_losses: list[float]
    draft_losses: list[float]
    collect_s: float
    train_s: float
    held_out_rows: list[int]
    otter: OtterModel | None = field(default=None, repr=False)
    draft: Any = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (everything but the models)."""
        models, self.otter, self.draft = (self.otter, self.draft), None, None
        try:
            data = asdict(self)
        finally:
            self.otter, self.draft = models
        data.pop("otter"), data.pop("draft")
        return data


def corpus_prompts(suite_prompts: Sequence[str], path: Path = CORPUS_PATH) -> list[str]:
    """The project's corpus lines as extra training prompts, minus any that open like a suite prompt.

    A suite's 48 prompts leave ~36 for training, too few for a draft to learn more than those prompts' own
    continuations; the ~500 corpus lines add data. Lines sharing their first four words with a suite prompt
    are dropped, so no held-out prompt is seen in training, even in part.
    """
    opening = {" ".join(text.split()[:4]) for text in suite_prompts}
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line and " ".join(line.split()[:4]) not in opening]


@torch.inference_mode()
def collect_continuations(base: Any, workload: Workload, device: Any) -> list[list[int]]:
    """prompt + the base's N greedy tokens for every prompt: the `base` arm's own output."""
    generated = BaseArm(base).run(workload, device).token_ids
    return [list(prompt) + row for prompt, row in zip(workload.prompt_ids, generated)]


def draft_scores_and_targets(
    model: Any, sequences: list[list[int]], new_tokens: int, pad_id: int, device: Any, ahead: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """A draft's scores [B,N-1,V] and its targets [B,N-1]: generated tokens 2..N, `ahead` positions on.

    `ahead` = 2 for Otter's signal (position t scores t+2), 1 for a draft model's logits. Left padding puts
    every sequence's last token at column width-1, so the generated tokens are the last N columns.
    """
    ids, mask = left_pad(sequences, pad_id, device)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions_from_mask(mask), use_cache=False)
    scores = out.signal if ahead == 2 else out.logits  # [B,W,V]
    width = ids.shape[1]
    first = width - new_tokens + 1  # column of generated token 2
    return scores[:, first - ahead : width - ahead].float(), ids[:, first:]


def _loss(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(scores.reshape(-1, scores.shape[-1]), targets.reshape(-1))


@torch.inference_mode()
def score_draft(
    model: Any, sequences: list[list[int]], new_tokens: int, pad_id: int, device: Any, ahead: int
) -> DraftScores:
    """Held-out acceptance (top-1 accuracy) and loss of one draft, in minibatches of 8 sequences."""
    hits, losses, count = 0, 0.0, 0
    for start in range(0, len(sequences), 8):
        part = sequences[start : start + 8]
        scores, targets = draft_scores_and_targets(model, part, new_tokens, pad_id, device, ahead)
        hits += int((scores.argmax(dim=-1) == targets).sum())
        losses += float(_loss(scores, targets)) * targets.numel()
        count += targets.numel()
    return DraftScores(hits / count, losses / count, count)


def train_draft(
    model: Any,
    sequences: list[list[int]],
    *,
    new_tokens: int,
    pad_id: int,
    ahead: int,
    steps: int,
    lr: float,
    seed: int,
    batch_size: int,
    device: Any,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Adam on the model's trainable parameters, `steps` seeded minibatches; returns each step's loss."""

    def loss_of(rows: list[int]) -> torch.Tensor:
        batch = [sequences[i] for i in rows]
        return _loss(*draft_scores_and_targets(model, batch, new_tokens, pad_id, device, ahead))

    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    # the same seed gives every draft the same minibatches
    losses = fit(
        trainable,
        len(sequences),
        loss_of,
        steps=steps,
        lr=lr,
        seed=seed,
        batch_size=batch_size,
        on_step=on_step,
    )
    model.eval()
    return losses


def _check(models: Any, steps: Any, lr: Any, spec: OtterSpec, new_tokens: int) -> None:
    if getattr(models, "draft", None) is None:
        raise ValueError("distilling task accel needs a draft model (role draft), which is missing")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps={steps!r} is invalid: use an integer >= 0")
    if not lr > 0:
        raise ValueError(f"lr={lr!r} is invalid: use a positive learning rate")
    if spec.signal != "vocab":
        raise ValueError(f"OtterSpec.signal={spec.signal!r} cannot draft tokens: use signal='vocab'")
    if new_tokens < 2:
        raise ValueError(f"max_new_tokens={new_tokens} leaves nothing to draft: use >= 2")


def distill_accel(
    models: Any,
    prompt_ids: Sequence[Sequence[int]],
    spec: OtterSpec | None = None,
    steps: int = 150,
    lr: float = 1e-3,
    seed: int = 0,
    held_out_fraction: float = 0.25,
    *,
    extra_train_ids: Sequence[Sequence[int]] = (),
    max_new_tokens: int = 16,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
    on_step: Callable[[str, int, float], None] | None = None,
) -> AccelDistillReport:
    """Train Otter's draft (inserted into models.base) and a copy of models.draft on the base's continuations.

    `prompt_ids` are split into train and held-out prompts; `extra_train_ids` only ever train.
    """
    spec = spec or OtterSpec.from_ratio(models.base.config, signal="vocab")
    _check(models, steps, lr, spec, max_new_tokens)
    pad = models.base.config.pad_token_id
    pad = 0 if pad is None else int(pad)
    workload = Workload(
        tuple(tuple(p) for p in [*prompt_ids, *extra_train_ids]), batch_size=batch_size, max_new_tokens=max_new_tokens,
        vocab_size=int(models.base.config.vocab_size), pad_token_id=pad, seed=seed, knobs=knob_defaults(),
    )  # fmt: skip
    train_rows, held_rows = split_prompts(len(prompt_ids), held_out_fraction, seed)
    train_rows += list(range(len(prompt_ids), workload.num_prompts))
    started = time.perf_counter()
    sequences = collect_continuations(models.base, workload, device)
    collect_s = time.perf_counter() - started
    train_seqs, held_seqs = [sequences[i] for i in train_rows], [sequences[i] for i in held_rows]
    otter, draft = insert_otter(models.base, spec), copy.deepcopy(models.draft).float().requires_grad_(True)
    common = {"new_tokens": max_new_tokens, "pad_id": pad, "device": device}
    before = [
        score_draft(otter, held_seqs, ahead=2, **common),
        score_draft(draft, held_seqs, ahead=1, **common),
    ]
    started = time.perf_counter()
    settings = {"steps": steps, "lr": lr, "seed": seed, "batch_size": batch_size, **common}
    losses = {
        name: train_draft(
            model,
            train_seqs,
            ahead=ahead,
            **settings,
            on_step=(lambda step, loss, name=name: on_step(name, step, loss)) if on_step else None,
        )  # fmt: skip
        for name, model, ahead in (("otter", otter, 2), ("draft", draft, 1))
    }
    train_s = time.perf_counter() - started
    after = [
        score_draft(otter, held_seqs, ahead=2, **common),
        score_draft(draft, held_seqs, ahead=1, **common),
    ]
    return AccelDistillReport(
        task="accel", spec=spec.to_dict(), steps=steps, lr=lr, seed=seed, held_out_fraction=held_out_fraction,
        train_prompts=len(train_rows), held_out_prompts=len(held_rows), max_new_tokens=max_new_tokens,
        otter_before=before[0], otter_after=after[0], draft_before=before[1], draft_after=after[1],
        otter_losses=losses["otter"], draft_losses=losses["draft"], collect_s=collect_s, train_s=train_s,
        held_out_rows=held_rows, otter=otter, draft=draft,
    )  # fmt: skip


def save_accel_distilled(
    report: AccelDistillReport,
    directory: str | Path,
    prompts: Sequence[str],
    base_weights: str | None = None,
) -> Path:
    """Write the insertion (save_otter, with `base_weights`: the base's weights hash), the draft model
    (OUT/draft), held_out.jsonl and the report."""
    if report.otter is None or report.draft is None:
        raise ValueError("this AccelDistillReport carries no models to save")
    directory = Path(directory)
    metadata = {"distilled": True, "distill": {"task": report.task, "steps": report.steps}}
    save_otter(report.otter, directory, metadata=metadata, base_weights=base_weights)
    report.draft.save_pretrained(directory / DRAFT_DIR)
    lines = [json.dumps({"prompt": prompts[i]}) for i in report.held_out_rows]
    (directory / HELD_OUT_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    (directory / REPORT_FILE).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return directory
