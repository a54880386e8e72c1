"""What identifies a trained network, how to rebuild one from its checkpoint, and the one
implementation of "train a stage" (baseline, AVA, ...) on top of :func:`loop.fit`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from dance import config as config_mod
from dance import runtime
from dance.data import data_fingerprint
from dance.data.dataset import open_split
from dance.paths import Paths
from dance.train import checkpoint
from dance.train.loop import LossFn, Schedule, fit, write_history


def train_section(cfg: dict, model_name: str | None = None) -> dict:
    """``cfg["train"]`` as it applies to `model_name`: its ``per_model`` entry (keys not
    null) merged in; without the ``per_model`` table and the progress switch, since neither
    changes the weights."""
    train = {k: v for k, v in cfg["train"].items() if k not in ("progress", "per_model")}
    if model_name is not None:
        override = cfg["train"].get("per_model", {}).get(model_name, {})
        train.update({k: v for k, v in override.items() if v is not None})
    return train


def fingerprint_for_training(cfg: dict, stage: str = "baseline",
                             model_name: str | None = None) -> str:
    """Hash of every key that changes `stage`'s trained weights for `model_name` (not output
    folders or progress bars). The baseline hash covers seed/dataset/model/train only."""
    train = train_section(cfg, model_name)
    part = {"seed": cfg["seed"], "dataset": cfg["dataset"], "model": cfg["model"],
            "train": train}
    for section in config_mod.stage_sections(stage):
        part[section] = config_mod.lookup(cfg, section)
    return config_mod.fingerprint(part)


def model_meta(cfg: dict, model_name: str, stage: str, num_classes: int) -> dict:
    """The identity stored in a checkpoint and checked when it is loaded or resumed."""
    return {
        "model": model_name,
        "stage": stage,
        "num_classes": num_classes,
        "width": cfg["model"]["width"],
        "frames": cfg["dataset"]["frames"],
        "size": cfg["dataset"]["size"],
        "dataset": cfg["dataset"]["name"],
        "data": data_fingerprint(cfg),
        "fingerprint": fingerprint_for_training(cfg, stage, model_name),
    }


def build(cfg: dict, model_name: str, num_classes: int) -> torch.nn.Module:
    from dance.models.registry import build_model

    return build_model(model_name, num_classes=num_classes, width=cfg["model"]["width"],
                       frames=cfg["dataset"]["frames"], size=cfg["dataset"]["size"],
                       dropout=cfg["model"]["dropout"])


def load_trained(cfg: dict, model_name: str, stage: str, num_classes: int) -> torch.nn.Module:
    """The network saved by `stage`, checked against the current config."""
    path = Paths(cfg).checkpoint(model_name, stage)
    payload = checkpoint.load(path, expect=model_meta(cfg, model_name, stage, num_classes))
    model = build(cfg, model_name, num_classes)
    model.load_state_dict(payload["model"])
    return model.eval()


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
