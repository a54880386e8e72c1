"""Evaluate a trained stage's network on the test split and write its metrics."""

from __future__ import annotations

from pathlib import Path

from dance import runtime
from dance.data.dataset import open_split
from dance.evaluate.classify import predict, summarise
from dance.io import write_csv, write_json
from dance.models.trained import load_trained
from dance.paths import Paths


def evaluate_stage(cfg: dict, model_name: str, stage: str) -> Path:
    """Top-1, per-class accuracy and confusion matrix of `stage`'s network on the test split."""
    device = runtime.setup(cfg)
    paths = Paths(cfg)
    test_set = open_split(cfg, "test")
    model = load_trained(cfg, model_name, stage, test_set.num_classes).to(device)
    logits = predict(model, test_set, cfg["train"]["eval_batch_size"], device,
                     progress=cfg["train"]["progress"], desc=f"{model_name} {stage} test")
    metrics = {"model": model_name, "stage": stage, "split": "test",
               **summarise(logits, test_set.labels, test_set.classes)}
    out = paths.evaluation(model_name, stage)
    write_csv(out.with_name(f"{stage}_per_class.csv"),
              [{"class": c, "accuracy": a} for c, a in metrics["per_class_accuracy"].items()])
    write_csv(out.with_name(f"{stage}_confusion.csv"),
              [{"true": c, **dict(zip(test_set.classes, row, strict=True))}
               for c, row in zip(test_set.classes, metrics["confusion"], strict=True)])
    write_json(out, metrics)
    return out
