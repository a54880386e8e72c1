"""Data sets: the generated default set and UCF101/HMDB51, all cached in one shard format."""

from __future__ import annotations

from pathlib import Path


def prepare(cfg: dict, progress: bool = True) -> Path:
    """Build the configured data set's shard cache (idempotent) and return its manifest."""
    from dance.paths import Paths

    out_dir = Paths(cfg).data_dir
    if cfg["dataset"]["name"] == "synthetic":
        from dance.data.synthetic import generate

        return generate(cfg, out_dir, progress=progress)
    from dance.data.video import prepare_real

    return prepare_real(cfg, out_dir, progress=progress)
