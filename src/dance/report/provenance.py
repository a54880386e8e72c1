"""``{results_dir}/provenance.json``: what produced the results.

Two sections, so that a determinism check can compare everything but the clock:

* ``reproducible`` — the same code, config and machine give the same values: code commit
  and whether tracked files other than the outputs differ from it (``dirty``), the
  fingerprint of the validated config (and the config itself), the data set (its
  manifest's SHA-256, and per split a hash of its shards' SHA-256s), Python and package
  versions, platform, CPU model, logical CPUs usable, torch threads configured;
* ``run`` — when it was written (UTC, ISO 8601). Nothing else carries a date.

Git is optional: outside a git checkout (a release tarball) the commit is "unknown" with
the reason, never guessed.
"""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from dance import config as config_mod
from dance.config import REPO_ROOT
from dance.io import write_json
from dance.paths import Paths

PACKAGES = ("torch", "numpy", "pandas", "matplotlib", "seaborn", "snakemake", "fvcore", "av",
            "scipy", "onnxruntime", "onnx", "torch-pruning", "jetson-stats")


def _git(*args: str) -> str:
    out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=30, check=True)
    return out.stdout.rstrip("\n")


def git_commit() -> str:
    """The checkout's commit, ``unknown`` outside git (the provenance rule's params
    trigger: a new commit re-records provenance)."""
    try:
        return _git("rev-parse", "HEAD").strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def code_state(outputs: list[Path]) -> dict[str, Any]:
    """Commit of the checkout and whether tracked files differ from it; the run's own
    output folders (`outputs`, when inside the checkout) do not count."""
    try:
        commit = _git("rev-parse", "HEAD").strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return {"commit": "unknown", "dirty": None, "reason": f"not a git checkout: {exc}"}
    spec = []
    for out in outputs:
        try:
            spec.append(f":(exclude){Path(out).resolve().relative_to(REPO_ROOT)}")
        except ValueError:
            pass                                     # outside the checkout: not tracked
    changed = _git("status", "--porcelain", "--untracked-files=no", "--", ".", *spec)
    return {"commit": commit, "dirty": bool(changed),
            "changed_files": sorted(line[3:] for line in changed.splitlines())}


def package_versions() -> dict[str, str | None]:
    """Installed version of each package that shapes the results; None if absent."""
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def data_state(paths: Paths) -> dict[str, Any]:
    """The data the run used (the data set of `paths`): its manifest's SHA-256 and, per
    split, a hash of the split's shard hashes (sorted by shard name) with the shards
    themselves, so that committed results are tied to their clips. "not built" when the
    manifest is absent."""
    import hashlib
    import json

    path = paths.manifest
    try:
        where = "work_dir/" + path.relative_to(paths.work).as_posix()
    except ValueError:
        where = path.as_posix()
    if not path.exists():
        return {"manifest": where, "status": "not built"}
    raw = path.read_bytes()
    shards = json.loads(raw).get("sha256", {})
    splits: dict[str, dict[str, str]] = {}
    for name, digest in sorted(shards.items()):
        split = name.split("_", 1)[0]                # train_000.npy, train_meta.csv
        splits.setdefault(split, {})[name] = digest
    return {"name": paths.dataset_name, "manifest": where,
            "manifest_sha256": hashlib.sha256(raw).hexdigest(),
            "splits": {split: {"sha256": hashlib.sha256("".join(
                f"{n}:{d}\n" for n, d in files.items()).encode()).hexdigest(), "shards": files}
                for split, files in splits.items()}}


def provenance(cfg: dict) -> dict[str, Any]:
    from dance.measure.latency import cpu_model

    paths = Paths(cfg)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "reproducible": {
            "code": code_state([paths.results, paths.figures, paths.work]),
            "config_fingerprint": config_mod.fingerprint(cfg),
            "config": cfg,
            "data": data_state(paths),
            "python": platform.python_version(),
            "packages": package_versions(),
            "platform": platform.platform(),
            "cpu": {"model": cpu_model(), "logical_cpus": os.cpu_count(),
                    "usable_cpus": usable,
                    "torch_threads": cfg["threads"] or usable},
        },
        "run": {"date": datetime.now(timezone.utc).isoformat(timespec="seconds")},
    }


def write_provenance(cfg: dict) -> Path:
    out = Paths(cfg).provenance
    write_json(out, provenance(cfg))
    return out
