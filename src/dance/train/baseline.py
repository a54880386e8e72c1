"""Stage 1: train each dense backbone from scratch (the reference every method starts from)."""

from __future__ import annotations

from pathlib import Path

import torch

from dance import runtime
from dance.data.dataset import ClipDataset
from dance.paths import Paths
from dance.train import checkpoint
from dance.train.loop import Schedule, fit, write_history
from dance.train.stage import build, model_meta


def train_baseline(cfg: dict, model_name: str) -> Path:
    """Train `model_name` on the configured data set; resumable; returns the checkpoint."""
    device = runtime.setup(cfg)
    paths = Paths(cfg)
    train_set = ClipDataset(paths.data_dir, "train")
    val_set = ClipDataset(paths.data_dir, "val")
    torch.manual_seed(cfg["seed"])  # initial weights
    model = build(cfg, model_name, train_set.num_classes)
    meta = model_meta(cfg, model_name, "baseline", train_set.num_classes)
    history = fit(model, train_set, val_set, Schedule.from_config(cfg["train"]),
                  seed=cfg["seed"], device=device,
                  state_dir=paths.epoch_checkpoint_dir(model_name, "baseline"),
                  meta=meta, desc=f"{model_name} baseline")
    write_history(paths.history(model_name, "baseline"), history)
    out = paths.checkpoint(model_name, "baseline")
    model.to("cpu", memory_format=torch.contiguous_format)
    checkpoint.save(out, {"meta": meta, "model": model.state_dict(), "history": history})
    return out
