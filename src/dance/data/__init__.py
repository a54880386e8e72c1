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


def data_fingerprint(cfg: dict) -> str | None:
    """Hash of the configured data set's manifest (None before it is built). Checkpoints
    record it, so a network trained on other data is retrained or refused, never evaluated
    on data it was not trained for. The manifest is byte-identical for identical data."""
    import hashlib

    from dance.paths import Paths

    path = Paths(cfg).manifest
    if not path.exists():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
