"""T1: the models and the data — size, dense cost and test accuracy, baseline vs AVA.

Dense MACs (the exact count of every table: one multiply-add = one MAC, a conv's taps that
read padding are not MACs; fvcore's count beside it, named) and memory accesses (ideal reuse,
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
    Column("params", "Params (M)", millions),
    Column("macs_dense", "Dense MACs (M, exact)", millions),
    Column("macs_fvcore", "fvcore count (M)", millions),
    Column("accesses_dense", "Memory accesses (M el.)", millions),
    Column("top1_baseline", "Top-1 baseline (%)", pct),
    Column("top1_ava", "Top-1 AVA (%)", pct),
    Column("top1_ava_delta_points", "Δ AVA (pt)", points),
    Column("hoyer_baseline", "Hoyer baseline", "{:.3f}"),
    Column("hoyer_ava", "Hoyer AVA", "{:.3f}"),
]


def rows(paths: Paths, models: list[str], dataset: str) -> pd.DataFrame:
    """One row per model of `models` (trained on data set `dataset`)."""
    profile = data.csv(paths.profile_summary, "python -m dance profile").set_index("model")
    out = []
    for model in models:
        base = data.read_json(paths.evaluation(model, "baseline"), "python -m dance evaluate")
        ava = data.read_json(paths.evaluation(model, "ava"), "python -m dance evaluate")
        summary = data.read_json(paths.ava_summary(model), "python -m dance ava-stats")
        dims = summary["dims"].values()
        prof = profile.loc[model] if model in profile.index else None
        out.append({
            "model": model, "dataset": dataset,
            "classes": len(base["classes"]), "test_clips": base["clips"],
            "input_shape": None if prof is None else prof["input_shape"],
            "params": None if prof is None else int(prof["params"]),
            **_dense_macs(prof),
            "accesses_dense": None if prof is None else int(prof["accesses"]),
            "top1_baseline": base["top1"], "top1_ava": ava["top1"],
            "top1_ava_delta_points": 100 * (ava["top1"] - base["top1"]),
            "hoyer_baseline": float(np.mean([d["hoyer_before"] for d in dims])),
            "hoyer_ava": float(np.mean([d["hoyer_after"] for d in dims])),
        })
    return pd.DataFrame(out)


def _dense_macs(prof: pd.Series | None) -> dict[str, int | None]:
    """T1's two MAC columns. A profile written before the exact count (no ``macs_fvcore``
    column) holds fvcore's count in ``macs``: it is shown as such, the exact one as missing."""
    if prof is None:
        return {"macs_dense": None, "macs_fvcore": None}
    if "macs_fvcore" not in prof.index:
        return {"macs_dense": None, "macs_fvcore": int(prof["macs"])}
    return {"macs_dense": int(prof["macs"]), "macs_fvcore": int(prof["macs_fvcore"])}


def build_t1(cfg: dict, artifact: Artifact) -> list[Path]:
    paths = Paths(cfg)
    return write_table(paths, artifact.name, artifact.title,
                       rows(paths, cfg["models"], cfg["dataset"]["name"]), COLUMNS,
                       note="Dense MACs: exact count (one multiply-add = one MAC; taps that "
                            "read a conv's zero padding are not MACs), the convention of "
                            "every MAC number of T2-T4, the figures and the claims; fvcore's "
                            "count (padding taps included, as fvcore/ptflops report it) is "
                            "given beside it for comparison with the literature. Memory "
                            "accesses: ideal-reuse model, elements. Hoyer: mean sparsity of "
                            "the frame/channel/feature magnitude profiles of the pruned "
                            "layers' inputs (test split).")
