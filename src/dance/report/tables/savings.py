"""T2: what DANCE saves at each operating point, and its ablations.

One row per model × variant × operating point of ``dance_summary.csv``: top-1 and its
change against the dense baseline, effective MACs (mean over test clips, with p5–p95),
memory accesses and the energy model estimate as fractions of dense, the share of frames,
channels and features pruned (mean over the pruned layers), and the host speed-up measured
interleaved with dense. ``reported`` marks the point the claims use (:func:`select_point`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dance.paths import Paths
from dance.report import data
from dance.report.data import VARIANT_LABELS, VARIANT_ORDER
from dance.report.registry import Artifact
from dance.report.tables.common import Column, pct, points, times, write_table


def rows(summary_csv: Path, tolerance_points: float) -> tuple[pd.DataFrame, list[str]]:
    """(table rows, energy presets found) of ``dance_summary.csv``; the reported point is
    chosen within `tolerance_points` (``claims.accuracy_tolerance``)."""
    summary = data.csv(summary_csv, "python -m dance dance-summary")
    chosen = {m: data.select_point(summary, m, tolerance_points)
              for m in summary["model"].unique()}
    presets = [c[len("energy_"):-len("_ratio_model")] for c in summary.columns
               if c.startswith("energy_") and c.endswith("_ratio_model")]
    out = []
    for _, r in summary.iterrows():
        pick = chosen.get(r["model"])
        row = {
            "model": r["model"], "variant": VARIANT_LABELS.get(r["variant"], r["variant"]),
            "operating_point": int(r["operating_point"]), "point_value": r["point_value"],
            "top1": r["top1"], "top1_delta_points": data.top1_drop_points(r),
            "macs_ratio": r["macs_ratio"], "macs_ratio_p5": r["macs_ratio_p5"],
            "macs_ratio_p95": r["macs_ratio_p95"], "memory_ratio": r["memory_ratio"],
            **{f"energy_{p}_ratio_model": r[f"energy_{p}_ratio_model"] for p in presets},
            "frames_pruned": 1 - r["kept_frames"], "channels_pruned": 1 - r["kept_channels"],
            "features_pruned": 1 - r["kept_features"],
            "speedup_measured": r["speedup_measured"],
            "reported": bool(pick and r["variant"] == "dance"
                             and int(pick["operating_point"]) == int(r["operating_point"])),
            "_order": (VARIANT_ORDER.index(r["variant"]) if r["variant"] in VARIANT_ORDER
                       else len(VARIANT_ORDER)),
        }
        out.append(row)
    frame = pd.DataFrame(out)
    if len(frame):
        frame = frame.sort_values(["model", "_order", "operating_point"]).drop(columns="_order")
    return frame, presets


def _range(lo: str, hi: str):
    return lambda row: f"{100 * row[lo]:.0f}–{100 * row[hi]:.0f}"


def build_t2(cfg: dict, artifact: Artifact) -> list[Path]:
    paths = Paths(cfg)
    tol = cfg["claims"]["accuracy_tolerance"]
    frame, presets = rows(paths.dance_summary, tol)
    if len(frame):
        frame["macs_range"] = frame.apply(_range("macs_ratio_p5", "macs_ratio_p95"), axis=1)
    columns = [
        Column("model", "Model"), Column("variant", "Variant"),
        Column("operating_point", "Point"), Column("top1", "Top-1 (%)", pct),
        Column("top1_delta_points", "Δ vs dense (pt)", points),
        Column("macs_ratio", "MACs (% dense)", pct),
        Column("macs_ratio_p5", "", display=False), Column("macs_ratio_p95", "", display=False),
        Column("macs_range", "MACs p5–p95 (% dense)"),
        Column("memory_ratio", "Memory acc. (% dense)", pct),
        *(Column(f"energy_{p}_ratio_model", f"Energy {p} (model, % dense)", pct)
          for p in presets),
        Column("frames_pruned", "Frames pruned (%)", pct),
        Column("channels_pruned", "Channels pruned (%)", pct),
        Column("features_pruned", "Features pruned (%)", pct),
        Column("speedup_measured", "Host speed-up (measured)", times),
        Column("reported", "Reported point"),
    ]
    note = (f"MACs: exact count from the controller's per-clip decisions on the test split. "
            f"Memory accesses and energy: analytic model estimates. Pruned shares: mean "
            f"over the pruned layers. Reported point: the DANCE point with the fewest MACs "
            f"within {tol:g} top-1 point(s) of dense (claims.accuracy_tolerance).")
    return write_table(paths, artifact.name, artifact.title, frame, columns, note=note)
