"""What identifies a trained network and how to rebuild one from its checkpoint.

Every stage that reads a trained backbone (benches, profiles, evaluation, the compared
methods, the AAP factory, export) loads it here, below the training loops: loading a network
does not need the code that trained it (docs/interfaces.md, "Layers").
"""

from __future__ import annotations

import torch

from dance import checkpoint
from dance.data import data_fingerprint
from dance.identity import stage_identity
from dance.models.registry import build_model
from dance.paths import Paths


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
        "fingerprint": stage_identity(cfg, model_name, stage),
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
