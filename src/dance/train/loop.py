"""The one training loop: SGD + warm-up/cosine LR, per-epoch checkpoints, exact resume.

Every stage that trains weights (baseline, AVA fine-tuning, baselines of the comparison)
calls :func:`fit` with its own loss. Resume is exact because each epoch's randomness (data
order, dropout) is re-seeded from (seed, epoch) and the full optimiser state is saved, so a
run killed at any point and re-run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import math
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from dance import checkpoint
from dance.config import fingerprint
from dance.data.dataset import ClipDataset
from dance.errors import CheckpointError, TrainingError
from dance.evaluate.classify import predict, summarise
from dance.io import write_csv

# loss_fn(model, x, y) -> (loss, logits, {term: value}) — extra terms are logged per epoch.
LossFn = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor],
                  tuple[torch.Tensor, torch.Tensor, dict[str, float]]]


@dataclass
class Schedule:
    epochs: int
    batch_size: int
    lr: float
    warmup_epochs: float = 0.0
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    channels_last: bool = True
    eval_batch_size: int = 32
    progress: bool = True
    lr_key: str = "train.lr"        # the config key of `lr`, named when training diverges

    @classmethod
    def from_config(cls, section: dict) -> Schedule:
        return cls(**{k: section[k] for k in cls.__dataclass_fields__ if k in section})

    def lr_at(self, step: int, steps_per_epoch: int) -> float:
        """Linear warm-up to `lr`, then cosine decay to 0 at the last step."""
        total = self.epochs * steps_per_epoch
        warm = int(self.warmup_epochs * steps_per_epoch)
        if step < warm:
            return self.lr * (step + 1) / warm
        progress = (step - warm) / max(1, total - warm)
        return 0.5 * self.lr * (1.0 + math.cos(math.pi * progress))


def cross_entropy_loss(label_smoothing: float = 0.0) -> LossFn:
    def loss_fn(model, x, y):
        logits = model(x)
        return F.cross_entropy(logits, y, label_smoothing=label_smoothing), logits, {}
    return loss_fn


def make_optimizer(model: torch.nn.Module, sched: Schedule) -> torch.optim.Optimizer:
    """SGD (Nesterov) or AdamW; no weight decay on norms and biases (1-D params).

    A parameter with an attribute ``lr_scale`` (e.g. a freshly initialised decision network
    fine-tuned together with a pretrained backbone) trains at ``lr_scale`` × the scheduled
    rate, in groups of its own after the two default groups."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = []
    for scale in dict.fromkeys([1.0, *(getattr(p, "lr_scale", 1.0) for p in params)]):
        own = [p for p in params if getattr(p, "lr_scale", 1.0) == scale]
        extra = {} if scale == 1.0 else {"lr_scale": float(scale)}
        groups += [{"params": [p for p in own if p.ndim > 1],
                    "weight_decay": sched.weight_decay, **extra},
                   {"params": [p for p in own if p.ndim <= 1], "weight_decay": 0.0, **extra}]
    if sched.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=sched.lr, betas=(sched.momentum, 0.999))
    return torch.optim.SGD(groups, lr=sched.lr, momentum=sched.momentum,
                           nesterov=sched.momentum > 0)


_EPOCH_FILE = re.compile(r"epoch_(\d{3})\.pt$")


def _latest_epoch_checkpoint(folder: Path) -> Path | None:
    found = sorted(p for p in folder.glob("epoch_*.pt") if _EPOCH_FILE.search(p.name))
    return found[-1] if found else None


def fit(model: torch.nn.Module, train_set: ClipDataset, val_set: ClipDataset,
        sched: Schedule, *, seed: int, device: torch.device, state_dir: Path,
        meta: dict, loss_fn: LossFn | None = None, desc: str = "train") -> list[dict]:
    """Train `model` in place, resuming from `state_dir`; return the per-epoch history.

    `meta` identifies the run (model, stage, config fingerprint, ...); it is stored in every
    checkpoint, and the resume point lives in :func:`resume_dir` (one folder per `meta`
    under `state_dir`), where a checkpoint whose meta differs is refused.
    """
    loss_fn = loss_fn or cross_entropy_loss(sched.label_smoothing)
    model.to(device)
    if sched.channels_last:
        model.to(memory_format=torch.channels_last_3d)
    optimizer = make_optimizer(model, sched)
    history: list[dict] = []
    start_epoch = 0

    state_dir = resume_dir(state_dir, meta)
    latest = _latest_epoch_checkpoint(state_dir)
    if latest is not None:
        state = checkpoint.load(latest, expect=meta)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        # Interned keys: the same str objects a fresh run uses, so pickle's memo (and thus
        # the bytes of the final checkpoint) is identical with and without a resume.
        history = [{sys.intern(k): v for k, v in row.items()} for row in state["history"]]
        start_epoch = state["epoch"] + 1
        print(f"[{desc}] resuming after epoch {start_epoch} from {latest}", file=sys.stderr)

    steps_per_epoch = math.ceil(len(train_set) / sched.batch_size)
    for epoch in range(start_epoch, sched.epochs):
        torch.manual_seed(seed * 100_003 + epoch)  # data order + dropout of this epoch
        order = torch.randperm(len(train_set))
        model.train()
        tic = time.perf_counter()
        sums = {"loss": 0.0, "correct": 0.0, "seen": 0}
        extra_sums: dict[str, float] = {}
        bar = tqdm(total=len(train_set), desc=f"{desc} epoch {epoch + 1}/{sched.epochs}",
                   unit="clip", disable=not sched.progress, file=sys.stderr)
        for step, (x, y, _) in enumerate(train_set.batches(sched.batch_size, order)):
            lr = sched.lr_at(epoch * steps_per_epoch + step, steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            x, y = x.to(device), y.to(device)
            if sched.channels_last:
                x = x.contiguous(memory_format=torch.channels_last_3d)
            loss, logits, terms = loss_fn(model, x, y)
            if not torch.isfinite(loss.detach()):
                bar.close()
                raise TrainingError(
                    f"{desc}: the training loss became {float(loss.detach())} at epoch "
                    f"{epoch + 1}, step {step + 1}; lower '{sched.lr_key}' (peak rate "
                    f"{sched.lr:g}) and re-run. No checkpoint of this epoch was written")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            n = len(y)
            sums["loss"] += float(loss.detach()) * n
            sums["correct"] += float((logits.argmax(1) == y).sum())
            sums["seen"] += n
            for k, v in terms.items():
                extra_sums[k] = extra_sums.get(k, 0.0) + float(v) * n
            bar.update(n)
            bar.set_postfix(loss=f"{sums['loss'] / sums['seen']:.3f}",
                            acc=f"{sums['correct'] / sums['seen']:.3f}", lr=f"{lr:.4f}")
        bar.close()
        val = summarise(predict(model, val_set, sched.eval_batch_size, device,
                                channels_last=sched.channels_last),
                        val_set.labels, val_set.classes)
        row = {"epoch": epoch + 1, "lr_end": lr,
               "train_loss": sums["loss"] / sums["seen"],
               "train_top1": sums["correct"] / sums["seen"],
               "val_loss": val["loss"], "val_top1": val["top1"],
               **{k: v / sums["seen"] for k, v in extra_sums.items()}}
        history.append(row)
        print(f"[{desc}] epoch {epoch + 1}/{sched.epochs}: train loss {row['train_loss']:.4f} "
              f"top1 {row['train_top1']:.3f} | val loss {row['val_loss']:.4f} top1 "
              f"{row['val_top1']:.3f} | {time.perf_counter() - tic:.0f}s", file=sys.stderr)
        checkpoint.save(state_dir / f"epoch_{epoch:03d}.pt", {
            "meta": meta, "epoch": epoch, "history": history,
            "model": model.state_dict(), "optimizer": optimizer.state_dict()})
        for old in state_dir.glob("epoch_*.pt"):  # keep only the newest resume point
            if old.name != f"epoch_{epoch:03d}.pt":
                old.unlink()
    if start_epoch >= sched.epochs and not history:
        raise CheckpointError(f"{state_dir} holds no training history to finish from")
    return history


def resume_dir(state_dir: Path, meta: dict) -> Path:
    """The folder under `state_dir` that holds the resume point of the run `meta` names.

    One per run identity: after a config change the workflow re-runs a training step whose
    last resume point belongs to the old config. Kept in one folder, that point would block
    the new run (refused, since resuming it would mix two configs) or be overwritten; in
    its own folder the new run starts afresh beside it, and changing the config back
    resumes (or, finished, just re-writes) the old run instead of training it again.
    """
    return state_dir / f"run-{fingerprint(meta)}"


def write_history(path: Path, history: list[dict]) -> None:
    write_csv(path, history)
