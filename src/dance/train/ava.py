"""Stage 2: AVA fine-tuning of each baseline (method.md §2, our reconstruction).

The baseline's weights are fine-tuned with CE − λ·σ²_AVA so that the magnitude profiles of
the tensors AAP will prune become more uneven (more frames/channels/features near zero).
Training, resume and outputs are those of every stage (:func:`stage.train_stage`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dance.ava.loss import ava_loss_fn
from dance.identity import finetune_settings
from dance.models.trained import load_trained
from dance.train.loop import Schedule
from dance.train.stage import train_stage


def ava_schedule(cfg: dict, settings: dict | None = None) -> Schedule:
    """`train`'s schedule with the epochs, peak LR (and the key that sets it) and warm-up of
    the `ava` section, or of `settings` (:func:`dance.identity.finetune_settings`)."""
    ava = cfg["ava"]
    settings = settings or {"epochs": ava["epochs"], "lr": ava["lr"], "lr_key": "ava.lr",
                            "warmup_epochs": ava["warmup_epochs"]}
    return replace(Schedule.from_config(cfg["train"]), **settings)


def finetune_schedule(cfg: dict, lr_key: str) -> Schedule:
    """The schedule of a compared method (dance.sota): AVA's, for ``sota.epochs`` epochs
    when that key is set (a fine-tuning budget of its own, issue 23.2), at the rate of
    `lr_key` when set; what enters its identity (:func:`dance.identity.finetune_settings`)."""
    return ava_schedule(cfg, finetune_settings(cfg, lr_key))


def train_ava(cfg: dict, model_name: str) -> Path:
    """Fine-tune the baseline of `model_name` with the AVA loss; resumable; returns the
    checkpoint (its history holds per-epoch ce, L_FR, L_CH, L_FE, sigma2_ava, val_top1)."""
    ava = cfg["ava"]
    loss_fn = ava_loss_fn(ava["lambda"], ava["w_fr"], ava["w_ch"], ava["w_fe"],
                          label_smoothing=cfg["train"]["label_smoothing"])
    return train_stage(cfg, model_name, "ava", ava_schedule(cfg),
                       init=lambda n: load_trained(cfg, model_name, "baseline", n),
                       loss_fn=loss_fn)
