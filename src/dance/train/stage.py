"""What identifies a trained network, and how to rebuild one from its checkpoint."""

from __future__ import annotations

import torch

from dance import config as config_mod
from dance.paths import Paths
from dance.train import checkpoint


def fingerprint_for_training(cfg: dict) -> str:
    """Hash of every key that changes trained weights (not output folders or progress bars)."""
    train = {k: v for k, v in cfg["train"].items() if k != "progress"}
    return config_mod.fingerprint({"seed": cfg["seed"], "dataset": cfg["dataset"],
                                   "model": cfg["model"], "train": train})


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
        "fingerprint": fingerprint_for_training(cfg),
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
