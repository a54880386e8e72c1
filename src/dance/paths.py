"""Where every file lives. The Snakefile and the CLI both ask this module, so a path is
defined once; `results_dir`, `figures_dir` and `work_dir` in the config move everything."""

from __future__ import annotations

from pathlib import Path


class Paths:
    def __init__(self, cfg: dict):
        self.results = Path(cfg["results_dir"])
        self.figures = Path(cfg["figures_dir"])
        self.work = Path(cfg["work_dir"])
        self.dataset_name = cfg["dataset"]["name"]

    # data ---------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        """Cached uint8 shards and the manifest of the configured data set."""
        return self.work / "data" / self.dataset_name

    @property
    def manifest(self) -> Path:
        return self.data_dir / "manifest.json"

    # checkpoints --------------------------------------------------------------------
    def checkpoint(self, model: str, stage: str) -> Path:
        """Final weights of a training stage (baseline, ava, ...)."""
        return self.work / "checkpoints" / model / f"{stage}.pt"

    def epoch_checkpoint_dir(self, model: str, stage: str) -> Path:
        """Per-epoch resumable state of a training stage."""
        return self.work / "checkpoints" / model / stage

    # metrics ------------------------------------------------------------------------
    @property
    def metrics(self) -> Path:
        return self.results / "metrics"

    def history(self, model: str, stage: str) -> Path:
        """Per-epoch training curve (loss, accuracy, extra loss terms)."""
        return self.metrics / model / f"{stage}_history.csv"

    def evaluation(self, model: str, stage: str) -> Path:
        """Test-split evaluation: top-1, per-class accuracy, confusion matrix."""
        return self.metrics / model / f"{stage}_eval.json"

    # figures ------------------------------------------------------------------------
    def figure(self, name: str, ext: str = "png") -> Path:
        return self.figures / f"{name}.{ext}"
