"""The one implementation of "train a stage" (baseline, AVA, ...) on top of :func:`loop.fit`;
what identifies a trained network and how to load one lives in :mod:`dance.models.trained`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from dance import checkpoint, runtime
from dance.data.dataset import open_split
from dance.models.trained import model_meta
from dance.paths import Paths
from dance.train.loop import LossFn, Schedule, fit, write_history


def train_stage(cfg: dict, model_name: str, stage: str, sched: Schedule, *,
                init: Callable[[int], torch.nn.Module], loss_fn: LossFn | None = None) -> Path:
    """Train one stage of `model_name`; resumable; returns its final checkpoint.

    `init(num_classes)` gives the starting network (fresh weights, or an earlier stage's);
    `loss_fn` defaults to cross-entropy. Per-epoch state goes to ``Paths.epoch_checkpoint_dir(model, stage)``,
    the curve to ``Paths.history`` and the weights to ``Paths.checkpoint``.
    """
    device = runtime.setup(cfg)
    paths = Paths(cfg)
    train_set = open_split(cfg, "train")
    val_set = open_split(cfg, "val")
    model = init(train_set.num_classes)
    meta = model_meta(cfg, model_name, stage, train_set.num_classes)
    history = fit(model, train_set, val_set, sched, seed=cfg["seed"], device=device,
                  state_dir=paths.epoch_checkpoint_dir(model_name, stage), meta=meta,
                  loss_fn=loss_fn, desc=f"{model_name} {stage}")
    write_history(paths.history(model_name, stage), history)
    out = paths.checkpoint(model_name, stage)
    model.to("cpu", memory_format=torch.contiguous_format)
    checkpoint.save(out, {"meta": meta, "model": model.state_dict(), "history": history})
    return out
