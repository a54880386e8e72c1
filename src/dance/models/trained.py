"""What identifies a trained network and how to rebuild one from its checkpoint.

Every stage that reads a trained backbone (benches, profiles, evaluation, the compared
methods, the AAP factory, export) loads it here, below the training loops: loading a network
does not need the code that trained it (docs/interfaces.md, "Layers").
"""

from __future__ import annotations

import torch

from dance import checkpoint
from dance import config as config_mod
from dance.data import data_fingerprint
from dance.models.registry import build_model
from dance.paths import Paths


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
