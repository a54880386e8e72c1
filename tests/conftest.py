"""Shared test helpers: tiny configs and a subprocess runner for the CLI and Snakemake."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dance import config as config_mod

REPO = Path(__file__).resolve().parents[1]


def tiny_config(tmp_path: Path, **overrides) -> dict:
    """A validated config with a very small data set, writing everything under tmp_path."""
    raw = {
        "results_dir": str(tmp_path / "results"),
        "figures_dir": str(tmp_path / "figures"),
        "work_dir": str(tmp_path / "work"),
        "device": "cpu",
        "threads": 1,
        "dataset": {"frames": 8, "size": 32, "shard_size": 16,
                    "synthetic": {"train_clips": 24, "val_clips": 10, "test_clips": 10}},
        "model": {"width": 0.125},
        # SGD at 0.05: the setting the tiny-scale tests (AVA effect sizes, ...) were tuned with.
        "train": {"epochs": 2, "batch_size": 8, "progress": False, "warmup_epochs": 0.5,
                  "optimizer": "sgd", "lr": 0.05},
    }
    return config_mod.validate(config_mod.merge(raw, overrides))


def run(cmd: list[str], cwd: Path = REPO, timeout: float = 900, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, **kw)


def dance_cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "dance", *args], **kw)


def rebuild_and_compare(results: Path, figures: Path, config: Path, tmp_path: Path) -> None:
    """Copy the folder `results` alone (no work dir: no checkpoint, no data) without its
    tables, redraw every table and figure from it into tmp_path, and check that every
    table (CSV, Markdown, LaTeX) and every figure's data CSV equal those in `results` and
    `figures`."""
    import shutil

    from dance.report import registry

    copy = tmp_path / "results"
    shutil.copytree(results, copy, ignore=shutil.ignore_patterns("tables"))
    sets = ["--set", f"results_dir={copy}", "--set", f"figures_dir={tmp_path / 'figures'}",
            "--set", f"work_dir={tmp_path / 'no-work'}"]
    for kind in ("table", "figure"):
        proc = dance_cli(kind, "all", "--config", str(config), *sets, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (tmp_path / "no-work").exists()
    cfg = config_mod.load(config, {"results_dir": str(copy),
                                   "figures_dir": str(tmp_path / "figures")})
    for a in registry.ARTIFACTS.values():
        for path in a.outputs(cfg):
            assert path.stat().st_size > 0, path
            if path.suffix in (".csv", ".md", ".tex"):
                ref = (results if a.kind == "table" else figures) / path.relative_to(
                    copy if a.kind == "table" else tmp_path / "figures")
                assert path.read_text() == ref.read_text(), path.name


@pytest.fixture
def tiny(tmp_path: Path) -> dict:
    return tiny_config(tmp_path)
