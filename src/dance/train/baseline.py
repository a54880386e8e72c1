"""Stage 1: train each dense backbone from scratch (the reference every method starts from)."""

from __future__ import annotations

from pathlib import Path

import torch

from dance.identity import train_section
from dance.models.trained import build
from dance.train.loop import Schedule
from dance.train.stage import train_stage


def baseline_schedule(train: dict, progress: bool) -> Schedule:
    """The baseline's schedule from a model's `train` keys
    (:func:`dance.identity.train_section`: ``train`` with its ``per_model`` entry)."""
    return Schedule.from_config({**train, "progress": progress})


def train_baseline(cfg: dict, model_name: str) -> Path:
    """Train `model_name` on the configured data set; resumable; returns the checkpoint."""
    def init(num_classes: int) -> torch.nn.Module:
        torch.manual_seed(cfg["seed"])  # initial weights
        return build(cfg, model_name, num_classes)

    sched = baseline_schedule(train_section(cfg, model_name), cfg["train"]["progress"])
    return train_stage(cfg, model_name, "baseline", sched, init=init)
