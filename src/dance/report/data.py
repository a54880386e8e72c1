"""Reading the workflow's result files for the tables, figures and claims.

A missing required file is a :class:`DanceError` naming it and the command that makes it;
files produced by optional stages (the state-of-the-art comparison, the device runs) are
read with :func:`optional_csv`, which returns ``None`` so the table or figure can say
"not available yet" instead of failing.

The **operating point** every table, figure and claim reports for DANCE is chosen by one
rule, :func:`select_point`: among the model's DANCE points (variant ``dance``), the one
with the fewest effective MACs whose top-1 is within ``claims.accuracy_tolerance`` points
of the dense baseline. If no point is that close, the most accurate point is reported and
flagged (``within_tolerance`` false), and the accuracy claim is then not reproduced.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dance.devices.summary import COLUMNS as DEVICE_SUMMARY_COLUMNS
from dance.errors import DanceError
from dance.measure import accuracy

# Column contracts of files other stages write (docs/interfaces.md "Report inputs").
# devices.csv is read with the device stage's own column list: one contract, no copy.
DEVICE_COLUMNS = DEVICE_SUMMARY_COLUMNS
MATCHED_COLUMNS = ["model", "preset", "dance_point", "dance_energy", "dense_energy",
                   "efficiency_vs_dense", "best_other_method", "best_other_point",
                   "best_other_energy", "efficiency_ratio", "nearest_compared", "note"]
COMPARISON_COLUMNS = ["method", "model", "operating_point", "top1", "top1_delta",
                      "macs_ratio", "memory_ratio"]

VARIANT_ORDER = ["dance", "no_ava", "frames", "channels", "features"]
VARIANT_LABELS = {"dance": "DANCE", "no_ava": "w/o AVA", "frames": "frames only",
                  "channels": "channels only", "features": "features only"}


def csv(path: Path, made_by: str = "") -> pd.DataFrame:
    """A required result CSV."""
    path = Path(path)
    if not path.exists():
        hint = f" (made by `{made_by}`)" if made_by else ""
        raise DanceError(f"result file not found: {path}{hint}; run the workflow first")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DanceError(f"{path} is not a readable CSV ({exc})") from None


def optional_csv(path: Path, required_columns: list[str] | None = None) -> pd.DataFrame | None:
    """A CSV another stage may not have produced yet: None when absent.

    Present but without a contract column is an error naming the column and the file: a
    silently missing column would otherwise become a blank table cell."""
    path = Path(path)
    if not path.exists():
        return None
    frame = csv(path)
    missing = [c for c in required_columns or [] if c not in frame.columns]
    if missing:
        raise DanceError(f"{path} lacks the column(s) {', '.join(missing)} of its contract "
                         f"(docs/interfaces.md)")
    return frame


def read_json(path: Path, made_by: str = "") -> Any:
    path = Path(path)
    if not path.exists():
        hint = f" (made by `{made_by}`)" if made_by else ""
        raise DanceError(f"result file not found: {path}{hint}; run the workflow first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DanceError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None


def accuracy_counts(row: pd.Series | dict) -> tuple[int, int, int] | None:
    """(correct, the reference's correct, clips) of a summary row, on which accuracy
    verdicts are taken; None for a summary written before it had counts (issue 23.4)."""
    values = [row.get(k) for k in ("correct", "correct_reference", "clips")]
    if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in values):
        return None
    correct, reference, clips = (int(v) for v in values)
    return correct, reference, clips


def top1_drop_points(row: pd.Series | dict) -> float:
    """Top-1 change in points against the dense baseline (unpruned backbone if no baseline
    evaluation exists), negative = DANCE is worse: from the integer counts when the row has
    them (exact), else from the float deltas of an older summary."""
    counts = accuracy_counts(row)
    if counts is not None:
        return float(accuracy.delta_points(*counts))
    delta = row.get("top1_delta_baseline")
    if delta is None or (isinstance(delta, float) and np.isnan(delta)):
        delta = row["top1_delta"]
    return 100.0 * float(delta)


def within_points(row: pd.Series | dict, tolerance_points: float) -> bool:
    """Whether a summary row's top-1 is at most `tolerance_points` below the reference:
    decided on integer counts (an older summary without them: on its floats, with the
    slack it needed)."""
    counts = accuracy_counts(row)
    if counts is not None:
        return accuracy.within_points(*counts, tolerance_points)
    return top1_drop_points(row) >= -tolerance_points - 1e-9


def select_point(summary: pd.DataFrame, model: str, tolerance_points: float,
                 variant: str = "dance") -> dict[str, Any] | None:
    """The reported operating point of `model` (module docstring); None if it has none.

    Returns the summary row as a dict plus ``accuracy_delta_points`` and
    ``within_tolerance``.
    """
    rows = summary[(summary["model"] == model) & (summary["variant"] == variant)]
    if rows.empty:
        return None
    rows = rows.assign(accuracy_delta_points=[top1_drop_points(r) for _, r in rows.iterrows()])
    ok = rows[[within_points(r, tolerance_points) for _, r in rows.iterrows()]]
    if not ok.empty:
        best = ok.sort_values(["macs_ratio", "operating_point"]).iloc[0]
        within = True
    else:
        best = rows.sort_values(["top1", "macs_ratio"], ascending=[False, True]).iloc[0]
        within = False
    return {**best.to_dict(), "within_tolerance": within}


def illustrative_point(summary_csv: Path, model: str) -> int:
    """The DANCE point whose decisions show the method best: the one with the fewest mean
    MACs, where the controller prunes most (the figures of *what* is pruned use it; every
    number in the tables and claims stays at the reported point). `summary_csv`:
    ``Paths.dance_summary``."""
    summary = csv(summary_csv, "python -m dance dance-summary")
    rows = summary[(summary["model"] == model) & (summary["variant"] == "dance")]
    if rows.empty:
        raise DanceError(f"{summary_csv} has no DANCE operating point of model {model!r}")
    return int(rows.sort_values(["macs_ratio", "operating_point"]).iloc[0]["operating_point"])


def reported_points(summary_csv: Path, models: list[str], tolerance_points: float,
                    ) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """(dance_summary, model → its reported DANCE point) for every one of `models` with one;
    `tolerance_points` is ``claims.accuracy_tolerance``."""
    summary = csv(summary_csv, "python -m dance dance-summary")
    picks = {m: select_point(summary, m, tolerance_points) for m in models}
    return summary, {m: p for m, p in picks.items() if p is not None}


def reported_point(summary_csv: Path, model: str, tolerance_points: float) -> dict[str, Any]:
    """The reported DANCE point of `model`; an error naming the summary if it has none."""
    _, picks = reported_points(summary_csv, [model], tolerance_points)
    if model not in picks:
        raise DanceError(f"{summary_csv} has no DANCE operating point of model {model!r}")
    return picks[model]


def nan_to_none(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float | np.floating) and np.isnan(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value
