"""Stage 2: AVA fine-tuning of each baseline (method.md §2, our reconstruction).

The baseline's weights are fine-tuned with CE − λ·σ²_AVA so that the magnitude profiles of
the tensors AAP will prune become more uneven (more frames/channels/features near zero).
Training, resume and outputs are those of every stage (:func:`stage.train_stage`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dance.ava.loss import ava_loss_fn
from dance.models.trained import load_trained
from dance.train.loop import Schedule
from dance.train.stage import train_stage


def finetune_schedule(train: dict, settings: dict) -> Schedule:
    """The `train` section's schedule with a fine-tuning's epochs, peak LR (and the key that
    sets it) and warm-up: AVA's (:func:`ava_schedule`), or a compared method's (dance.sota:
    `settings` = :func:`dance.identity.finetune_settings`, what enters its identity)."""
    return replace(Schedule.from_config(train), **settings)


def ava_schedule(train: dict, ava: dict) -> Schedule:
    """AVA's schedule: `train`'s, with the epochs, peak LR and warm-up of the `ava` section."""
    return finetune_schedule(train, {"epochs": ava["epochs"], "lr": ava["lr"],
                                     "lr_key": "ava.lr", "warmup_epochs": ava["warmup_epochs"]})


def train_ava(cfg: dict, model_name: str) -> Path:
    """Fine-tune the baseline of `model_name` with the AVA loss; resumable; returns the
    checkpoint (its history holds per-epoch ce, L_FR, L_CH, L_FE, sigma2_ava, val_top1)."""
    ava = cfg["ava"]
    loss_fn = ava_loss_fn(ava["lambda"], ava["w_fr"], ava["w_ch"], ava["w_fe"],
                          label_smoothing=cfg["train"]["label_smoothing"])
    return train_stage(cfg, model_name, "ava", ava_schedule(cfg["train"], ava),
                       init=lambda n: load_trained(cfg, model_name, "baseline", n),
                       loss_fn=loss_fn)
