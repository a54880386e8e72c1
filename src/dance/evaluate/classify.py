"""Run a classifier over a split and summarise it. Shared by every stage that reports top-1."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from tqdm import tqdm

from dance.data.dataset import ClipDataset
from dance.measure import accuracy


@torch.no_grad()
def predict(model: torch.nn.Module | Callable, dataset: ClipDataset, batch_size: int,
            device: torch.device, channels_last: bool = False,
            progress: bool = False, desc: str = "eval") -> torch.Tensor:
    """Logits (N, classes) of `model` on the whole split, in split order."""
    if isinstance(model, torch.nn.Module):
        model.eval()
    outs = []
    bar = tqdm(total=len(dataset), desc=desc, unit="clip", disable=not progress, leave=False)
    for x, _, _ in dataset.batches(batch_size):
        x = x.to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        outs.append(model(x).float().cpu())
        bar.update(len(x))
    bar.close()
    return torch.cat(outs)


def summarise(logits: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> dict:
    """Top-1, mean loss, per-class accuracy and the confusion matrix (rows = true class)."""
    k = len(classes)
    preds = logits.argmax(1)
    confusion = torch.zeros(k, k, dtype=torch.long)
    confusion.index_put_((labels, preds), torch.ones_like(labels), accumulate=True)
    per_class = confusion.diag().float() / confusion.sum(1).clamp(min=1).float()
    correct = int((preds == labels).sum())
    return {
        "top1": accuracy.top1(correct, len(labels)),
        "correct": correct,
        "loss": float(F.cross_entropy(logits, labels)) if len(labels) else float("nan"),
        "clips": int(len(labels)),
        "classes": classes,
        "per_class_accuracy": {c: round(float(a), 6) for c, a in zip(classes, per_class, strict=True)},
        "confusion": confusion.tolist(),
    }
