"""Checkpoints that refuse to be misused.

A checkpoint records which model, data set and config produced it; loading one made for
something else, or a truncated/corrupt file, raises CheckpointError naming the file instead
of failing deep inside `load_state_dict`. It holds tensors and plain data only, and is read
with ``weights_only=True``: a file that holds anything else (a pickled object that would run
code when loaded) is refused before any of it runs.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import torch

from dance.errors import CheckpointError
from dance.io import atomic_path


def save(path: str | Path, payload: dict[str, Any]) -> None:
    """Atomic and byte-deterministic: torch names the zip records after the file it writes
    to, so we serialise to memory first (records named 'archive') and then write."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def load(path: str | Path, expect: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load a checkpoint; every key of `expect` must match its `meta` entry."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" not in str(exc):
            raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({exc}); delete "
                                  "it and re-run to rebuild it") from None
        raise CheckpointError(
            f"checkpoint {path} holds objects other than tensors and plain data; refused "
            "unread (loading it could run code). A DANCE checkpoint never does: rebuild it "
            "or ask its sender how it was made") from None
    except Exception as exc:  # torch raises many types for a damaged zip/pickle
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated ({type(exc).__name__}: "
            f"{str(exc)[:120]}); delete it and re-run to rebuild it") from None
    if not isinstance(payload, dict) or "meta" not in payload or "model" not in payload:
        raise CheckpointError(f"{path} is not a DANCE checkpoint (no 'meta'/'model' entries)")
    for key, want in (expect or {}).items():
        got = payload["meta"].get(key)
        if got != want and key == "data":
            raise CheckpointError(
                f"checkpoint {path} was trained on another data set (manifest hash {got!r}; "
                f"the data set now is {want!r}): re-run its training step (Snakemake does)")
        if got != want:
            raise CheckpointError(
                f"checkpoint {path} was made for {key}={got!r}, but this run needs "
                f"{key}={want!r}; delete it (or restore the config) and re-run")
    return payload
