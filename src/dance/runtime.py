"""Process-wide set-up: device, threads, seeds and determinism."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from dance.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """`auto` → cuda if present, else cpu; `cuda` without a GPU is a config error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("config key 'device' is 'cuda' but no CUDA GPU is visible; "
                          "allowed: auto, cpu, cuda")
    return torch.device(name)


def setup(cfg: dict) -> torch.device:
    """Apply threads and determinism settings; return the device to use."""
    threads = cfg["threads"] or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    seed_everything(cfg["seed"])
    device = resolve_device(cfg["device"])
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    set_determinism(device)
    return device


def set_determinism(device: torch.device) -> None:
    """Same config + same seed => same checkpoint bytes: forbid nondeterministic kernels.

    On the CPU every kernel the networks use has a deterministic implementation. On CUDA the
    backward passes of MaxPool3d and AdaptiveAvgPool3d (both backbones) have none, and
    PyTorch would raise at the first training step; there they run with a warning instead
    and a GPU run is reproducible only to their atomic-add rounding (docs/usage.md, "GPU").
    """
    torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")
    torch.backends.cudnn.benchmark = False


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
