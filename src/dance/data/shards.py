"""The cache format every data set is stored in: uint8 clip shards plus a manifest.

Layout of a data folder:

    manifest.json            counts, shapes, class names/balance, sha256 of every file
    {split}_{k:03d}.npy      uint8 array (N, T, H, W, 3), N <= shard_size
    {split}_meta.csv         one row per clip: index, label, difficulty, source, nuisance

`.npy` is used rather than `.npz`/`torch.save` because it is byte-deterministic (no zip
timestamps): the same seed gives byte-identical shards, which the manifest checksums prove.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from dance.errors import DataError
from dance.io import atomic_path, sha256_file, write_csv, write_json

MANIFEST_VERSION = 1
SPLITS = ("train", "val", "test")


class ShardWriter:
    """Stream clips of one split into shards of `shard_size` clips each."""

    def __init__(self, out_dir: str | Path, split: str, shard_size: int,
                 frames: int, size: int):
        self.out_dir = Path(out_dir)
        self.split = split
        self.shard_size = shard_size
        self.shape = (frames, size, size, 3)
        self._buffer: list[np.ndarray] = []
        self._meta: list[dict[str, Any]] = []
        self._files: list[str] = []

    def add(self, clip: np.ndarray, meta: dict[str, Any]) -> None:
        """Add one clip (uint8, T×H×W×3) with its metadata row (must hold `label`)."""
        if clip.dtype != np.uint8 or clip.shape != self.shape:
            raise ValueError(f"clip must be uint8 {self.shape}, got {clip.dtype} {clip.shape}")
        if "label" not in meta:
            raise ValueError("meta must hold 'label'")
        self._meta.append({"index": len(self._meta), **meta})
        self._buffer.append(clip)
        if len(self._buffer) == self.shard_size:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        name = f"{self.split}_{len(self._files):03d}.npy"
        with atomic_path(self.out_dir / name) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, np.stack(self._buffer))
        self._files.append(name)
        self._buffer = []

    def close(self) -> dict[str, Any]:
        """Write the last shard and the metadata CSV; return the split's manifest entry."""
        self._flush()
        meta_name = f"{self.split}_meta.csv"
        write_csv(self.out_dir / meta_name, self._meta)
        labels = Counter(int(m["label"]) for m in self._meta)
        return {
            "clips": len(self._meta),
            "shards": self._files,
            "meta": meta_name,
            "class_counts": {str(k): labels[k] for k in sorted(labels)},
        }


def write_manifest(out_dir: str | Path, info: dict[str, Any],
                   splits: dict[str, dict[str, Any]]) -> Path:
    """Write manifest.json last, so its presence means the data set is complete."""
    out_dir = Path(out_dir)
    files = sorted({f for s in splits.values() for f in [*s["shards"], s["meta"]]})
    manifest = {
        "version": MANIFEST_VERSION,
        **info,
        "splits": splits,
        "sha256": {f: sha256_file(out_dir / f) for f in files},
    }
    path = out_dir / "manifest.json"
    write_json(path, manifest)
    return path


def read_manifest(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise DataError(f"data manifest not found: {path} (run `python -m dance prepare-data`)")
    from dance.io import read_json

    manifest = read_json(path)
    if manifest.get("version") != MANIFEST_VERSION or "splits" not in manifest:
        raise DataError(f"{path} is not a DANCE data manifest of version {MANIFEST_VERSION}")
    return manifest


def verify(data_dir: str | Path, manifest: dict[str, Any], split: str | None = None) -> None:
    """Check every file (of one split, or all) against the manifest's sha256."""
    data_dir = Path(data_dir)
    names = manifest["sha256"]
    if split is not None:
        entry = manifest["splits"][split]
        names = {f: names[f] for f in [*entry["shards"], entry["meta"]]}
    for name, digest in names.items():
        path = data_dir / name
        if not path.exists():
            raise DataError(f"data shard missing: {path} (delete {data_dir} and re-run to rebuild)")
        if sha256_file(path) != digest:
            raise DataError(f"data shard corrupt (checksum mismatch): {path} "
                            f"(delete {data_dir} and re-run to rebuild)")


def load_split(data_dir: str | Path, split: str, check: bool = True
               ) -> tuple[np.ndarray, list[dict[str, str]], dict[str, Any]]:
    """Return (clips uint8 N×T×H×W×3, meta rows, manifest) of one split, checksums verified."""
    data_dir = Path(data_dir)
    manifest = read_manifest(data_dir / "manifest.json")
    if split not in manifest["splits"]:
        raise DataError(f"split {split!r} not in {data_dir / 'manifest.json'}")
    if check:
        verify(data_dir, manifest, split)
    entry = manifest["splits"][split]
    arrays = []
    for name in entry["shards"]:
        try:
            arrays.append(np.load(data_dir / name, mmap_mode="r"))
        except (ValueError, OSError) as exc:
            raise DataError(f"cannot read data shard {data_dir / name}: {exc}") from None
    shape = tuple(manifest["clip_shape"])
    clips = np.concatenate(arrays) if arrays else np.zeros((0, *shape), np.uint8)
    with open(data_dir / entry["meta"], newline="") as fh:
        meta = list(csv.DictReader(fh))
    if len(meta) != len(clips):
        raise DataError(f"{data_dir / entry['meta']} has {len(meta)} rows for {len(clips)} clips")
    return clips, meta, manifest
