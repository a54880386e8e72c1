"""The torch view of a cached split: float clips (3, T, H, W), labels and difficulty
(with its per-nuisance terms on the generated set)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from dance.data.shards import load_split
from dance.data.synthetic import TERM_COLUMNS

# Fixed per-channel normalisation (Kinetics-like statistics); a constant, so that the cached
# uint8 clips and the network input are linked by one documented affine map.
MEAN = 0.45
STD = 0.225


# Network inputs (config `dataset.input`). "rgb_minus_temporal_mean" removes each pixel's
# mean over the clip's frames, so what does not move is zero: on the generated data (labels
# are motions only) R3D-18 stays at chance on plain frames, its residual path carrying the
# static scene, and learns on this input (docs/experiments.md, "default data and recipe").
INPUTS = ("rgb", "rgb_minus_temporal_mean")


def to_input(clips_uint8: torch.Tensor, input_mode: str = "rgb") -> torch.Tensor:
    """(N, T, H, W, 3) uint8 → (N, 3, T, H, W) float32, normalised (and, for
    ``rgb_minus_temporal_mean``, minus each pixel's mean over the T frames)."""
    if input_mode not in INPUTS:
        raise ValueError(f"input mode {input_mode!r} unknown; allowed: {', '.join(INPUTS)}")
    x = clips_uint8.permute(0, 4, 1, 2, 3).float().div_(255.0)
    x = x.sub_(MEAN).div_(STD)
    if input_mode == "rgb_minus_temporal_mean":
        x = x.sub_(x.mean(dim=2, keepdim=True))
    return x


def open_split(cfg: dict, split: str) -> ClipDataset:
    """The configured data set's `split`, producing the configured network input."""
    from dance.paths import Paths

    return ClipDataset(Paths(cfg).data_dir, split, input_mode=cfg["dataset"]["input"])


class ClipDataset(Dataset):
    """A whole split held in memory (the default set is ~300 MB; real sets are cached small)."""

    def __init__(self, data_dir: str | Path, split: str, input_mode: str = "rgb"):
        clips, meta, manifest = load_split(data_dir, split)
        self.input_mode = input_mode
        self.clips = torch.from_numpy(np.ascontiguousarray(clips))
        self.labels = torch.tensor([int(m["label"]) for m in meta], dtype=torch.long)
        self.difficulty = torch.tensor(
            [float(m.get("difficulty") or "nan") for m in meta], dtype=torch.float32)
        # The generated set also stores the per-nuisance terms the difficulty sums; real
        # sets have none (empty).
        self.difficulty_terms: dict[str, torch.Tensor] = {
            term: torch.tensor([float(m.get(column) or "nan") for m in meta],
                               dtype=torch.float32)
            for term, column in TERM_COLUMNS.items() if meta and column in meta[0]}
        self.meta = meta
        self.classes: list[str] = list(manifest["classes"])
        self.split = split

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs(slice(i, i + 1))[0], self.labels[i]

    def inputs(self, index: torch.Tensor | slice) -> torch.Tensor:
        """Network inputs (N, 3, T, H, W) of the clips at `index`."""
        return to_input(self.clips[index], self.input_mode)

    def batches(self, batch_size: int, order: torch.Tensor | None = None):
        """Yield (x, y, idx) mini-batches; vectorised, faster than a DataLoader here."""
        order = torch.arange(len(self)) if order is None else order
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            yield self.inputs(idx), self.labels[idx], idx
