"""T1: the models and the data — size, dense cost and test accuracy, baseline vs AVA.

Dense MACs (fvcore count, one multiply-add = one MAC) and memory accesses (ideal reuse,
elements) come from the dense profile; top-1 from the stages' test evaluations; the mean
Hoyer sparsity of the activations AAP prunes (mean over layers and the frame, channel and
feature dimensions) from the AVA statistics.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dance.paths import Paths
from dance.report import data
from dance.report.registry import Artifact
from dance.report.tables.common import Column, millions, pct, points, write_table

COLUMNS = [
    Column("model", "Model"), Column("dataset", "Data set"), Column("classes", "Classes"),
    Column("test_clips", "Test clips"), Column("input_shape", "Input (N×C×T×H×W)"),
    Column("params", "Params (M)", millions), Column("macs_dense", "Dense MACs (M)", millions),
    Column("accesses_dense", "Memory accesses (M el.)", millions),
    Column("top1_baseline", "Top-1 baseline (%)", pct),
    Column("top1_ava", "Top-1 AVA (%)", pct),
    Column("top1_ava_delta_points", "Δ AVA (pt)", points),
    Column("hoyer_baseline", "Hoyer baseline", "{:.3f}"),
    Column("hoyer_ava", "Hoyer AVA", "{:.3f}"),
]


def rows(cfg: dict) -> pd.DataFrame:
    paths = Paths(cfg)
    profile = data.csv(paths.profile_summary, "python -m dance profile").set_index("model")
    out = []
    for model in cfg["models"]:
        base = data.read_json(paths.evaluation(model, "baseline"), "python -m dance evaluate")
        ava = data.read_json(paths.evaluation(model, "ava"), "python -m dance evaluate")
        summary = data.read_json(paths.ava_summary(model), "python -m dance ava-stats")
        dims = summary["dims"].values()
        prof = profile.loc[model] if model in profile.index else None
        out.append({
            "model": model, "dataset": cfg["dataset"]["name"],
            "classes": len(base["classes"]), "test_clips": base["clips"],
            "input_shape": None if prof is None else prof["input_shape"],
            "params": None if prof is None else int(prof["params"]),
            "macs_dense": None if prof is None else int(prof["macs"]),
            "accesses_dense": None if prof is None else int(prof["accesses"]),
            "top1_baseline": base["top1"], "top1_ava": ava["top1"],
            "top1_ava_delta_points": 100 * (ava["top1"] - base["top1"]),
            "hoyer_baseline": float(np.mean([d["hoyer_before"] for d in dims])),
            "hoyer_ava": float(np.mean([d["hoyer_after"] for d in dims])),
        })
    return pd.DataFrame(out)


def build_t1(cfg: dict, artifact: Artifact) -> list[Path]:
    return write_table(cfg, artifact.name, artifact.title, rows(cfg), COLUMNS,
                       note="Dense MACs: fvcore count (one multiply-add = one MAC). Memory "
                            "accesses: ideal-reuse model, elements. Hoyer: mean sparsity of "
                            "the frame/channel/feature magnitude profiles of the pruned "
                            "layers' inputs (test split).")
