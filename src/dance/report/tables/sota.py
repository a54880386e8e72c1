"""T4: DANCE against the state of the art at matched accuracy.

Per model and energy preset (``comparison_matched.csv``, the comparison stage): the DANCE
operating point and the best compared method's point at matched accuracy (dense is never
one), each with its top-1, effective MACs, memory accesses and energy (model estimates,
from ``comparison.csv``), and two energy-efficiency ratios kept apart: against the best
compared method (empty when none reaches the accuracy floor: the note names the nearest)
and against dense; each side's measured host speed-up over dense beside them (issue 20.7),
so "faster than dense" and "faster than the best compared method" both read off the table.
Each side's training budget is stated beside it (:func:`training_budget`,
issue 23.2): DANCE's AVA fine-tuning plus its controller's passes, a compared method's
fine-tuning — in epochs (read from the stages' histories) and clip passes.
Until that stage has run, the table has no rows and says so ("not available yet").
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pandas as pd

from dance.paths import Paths
from dance.plan import DYNAMIC_METHOD, dynamic_stage, l1_stage
from dance.report import data
from dance.report.registry import Artifact
from dance.report.tables.common import Column, pct, times, write_table, write_unavailable

COLUMNS = [
    Column("model", "Model"), Column("preset", "Energy model"),
    Column("dance_point", "DANCE point"), Column("dance_top1", "DANCE top-1 (%)", pct),
    Column("dance_macs_ratio", "DANCE MACs (% dense)", pct),
    Column("dance_memory_ratio", "DANCE memory (% dense)", pct),
    Column("dance_energy", "DANCE energy (model)", "{:.4g}"),
    Column("dance_training", "DANCE training"),
    Column("dance_speedup", "DANCE speed-up (host, measured)", times),
    Column("best_other_method", "Best other method"), Column("best_other_point", "Its point"),
    Column("other_top1", "Its top-1 (%)", pct),
    Column("other_macs_ratio", "Its MACs (% dense)", pct),
    Column("other_memory_ratio", "Its memory (% dense)", pct),
    Column("best_other_energy", "Its energy (model)", "{:.4g}"),
    Column("other_training", "Its training"),
    Column("other_speedup", "Its speed-up (host, measured)", times),
    Column("efficiency_ratio", "Efficiency vs best compared", times),
    Column("efficiency_vs_dense", "Efficiency vs dense", times), Column("note", "Note"),
]


def _epochs(n: int, train_clips: int | None) -> str:
    passes = "" if train_clips is None else f" = {n * train_clips:,} clip passes"
    return f"{n} epoch{'s' if n != 1 else ''}{passes}"


def _epochs_trained(path: Path) -> int | None:
    """Epochs a stage was trained, from its history (one row per epoch); None if absent."""
    if not path.exists():
        return None
    with open(path, newline="") as fh:
        return sum(1 for _ in csv.DictReader(fh))


def training_budget(paths: Paths, model: str, method: str | None, point=None, *,
                    dataset: dict, ava: dict, aap: dict, sota: dict) -> str | None:
    """What trained a T4 row's network from the dense baseline, in epochs and clip passes.
    The epochs are read from the stages' histories (what the run really did; the config's
    `ava`, `aap` and `sota` sections where a history is missing); the train split's size is
    known for the generated `dataset`, otherwise epochs only."""
    if method is None or isinstance(method, float):
        return None
    synthetic = dataset["name"] == "synthetic"
    train = dataset["synthetic"]["train_clips"] if synthetic else None
    finetune = sota.get("epochs") or ava["epochs"]
    method, point = str(method).lower(), str(point)

    def trained(path: Path, default: int) -> int:
        found = _epochs_trained(path)
        return default if found is None else found

    if method == "dance":
        ava_epochs = trained(paths.history(model, "ava"), ava["epochs"])
        ctrl = (trained(paths.aap_history(model, "dance", int(point)), aap["epochs"])
                if point.isdigit() else aap["epochs"])
        return (f"AVA {_epochs(ava_epochs, train)} + controller {ctrl} × {aap['train_clips']:,} "
                f"clip passes (backbone frozen)")
    dynamic = method in DYNAMIC_METHOD
    stage = (dynamic_stage(DYNAMIC_METHOD[method], point) if dynamic
             else {"l1": l1_stage(point), "selector": l1_stage("mild")}.get(method))
    if stage is None:
        return None
    epochs = _epochs(trained(paths.history(model, stage), finetune), train)
    if method == "selector":
        head = trained(paths.sota_history(model, "selector"), sota["selector"]["epochs"])
        return f"both L1 nets {epochs} + selector head {head} epochs on the val split"
    return epochs + (" (with its decisions)" if dynamic else "")


def _lookup(comparison: pd.DataFrame | None, model: str, method: str, point) -> dict:
    if comparison is None or method is None or (isinstance(method, float)):
        return {}
    hit = comparison[(comparison["model"] == model)
                     & (comparison["method"].str.lower() == str(method).lower())
                     & (comparison["operating_point"].astype(str) == str(point))]
    return hit.iloc[0].to_dict() if len(hit) else {}


def rows(paths: Paths, budget: Callable[[str, str | None, object], str | None],
         ) -> pd.DataFrame | None:
    """T4's rows (None before the comparison ran); `budget(model, method, point)` states a
    side's training (:func:`training_budget` with the config's sections)."""
    matched = data.optional_csv(paths.comparison_matched, data.MATCHED_COLUMNS)
    if matched is None:
        return None
    comparison = data.optional_csv(paths.comparison, data.COMPARISON_COLUMNS)
    out = []
    for _, r in matched.iterrows():
        mine = _lookup(comparison, r["model"], "dance", r["dance_point"])
        other = _lookup(comparison, r["model"], r["best_other_method"], r["best_other_point"])
        out.append({**r.to_dict(),
                    "dance_training": budget(r["model"], "dance", r["dance_point"]),
                    "other_training": budget(r["model"], r["best_other_method"],
                                             r["best_other_point"]),
                    "dance_top1": mine.get("top1"), "dance_macs_ratio": mine.get("macs_ratio"),
                    "dance_memory_ratio": mine.get("memory_ratio"),
                    "dance_speedup": mine.get("speedup_measured"),
                    "other_speedup": other.get("speedup_measured"),
                    "other_top1": other.get("top1"), "other_macs_ratio": other.get("macs_ratio"),
                    "other_memory_ratio": other.get("memory_ratio")})
    return pd.DataFrame(out)


def build_t4(cfg: dict, artifact: Artifact) -> list[Path]:
    paths = Paths(cfg)
    frame = rows(paths, partial(training_budget, paths, dataset=cfg["dataset"],
                                ava=cfg["ava"], aap=cfg["aap"], sota=cfg["sota"]))
    if frame is None:
        return write_unavailable(paths, artifact.name, artifact.title, COLUMNS,
                                 f"{paths.comparison_matched.name} has not been produced "
                                 f"(state-of-the-art comparison stage).")
    return write_table(paths, artifact.name, artifact.title, frame, COLUMNS,
                       note="Energy, memory accesses: analytic model estimates (per clip). "
                            "Matched accuracy and the choice of points: the comparison stage "
                            "(comparison_matched.csv, column note). Ratio > 1: DANCE needs "
                            "less energy than the best compared method (dense is not one) or "
                            "than dense; empty: no compared method reaches the accuracy "
                            "floor. Training: what each side was trained with from the dense "
                            "baseline (compared methods: sota.epochs of fine-tuning). Speed-up: "
                            "batch-1 latency of dense / the network's, timed interleaved with "
                            "dense on this host; empty for an interpolated point.")
