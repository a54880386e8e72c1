"""Accuracy against cost: every method's top-1 vs effective MACs (F6) and, per clip, the
MACs DANCE spends against how hard the clip is (F8).

F6 draws DANCE's operating points (horizontal bars: p5–p95 of per-clip MACs), its
ablations and the dense baseline from ``dance_summary.csv``, and every other method of
``comparison.csv`` when the comparison stage has run (its DANCE and dense rows are not
drawn twice). F8 sums each test clip's per-layer MACs (``*_decisions.csv``) plus the
layers AAP never prunes (``macs.dense_fixed`` of the evaluation JSON) and plots them
against the clip's stored difficulty, with the Spearman correlation the evaluation
reports: an input-adaptive controller spends more on harder clips.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dance.errors import DanceError
from dance.paths import Paths
from dance.report import data, style
from dance.report.data import VARIANT_LABELS
from dance.report.registry import Artifact


def tradeoff_rows(paths: Paths, models: list[str], tolerance_points: float) -> pd.DataFrame:
    """One row per method × model × point: top1, macs_ratio (p5/p95 where known), source;
    ``reported`` marks each model's reported DANCE point (`tolerance_points`:
    ``claims.accuracy_tolerance``)."""
    summary, picks = data.reported_points(paths.dance_summary, models, tolerance_points)
    rows = []
    for model in models:
        base = data.read_json(paths.evaluation(model, "baseline"), "python -m dance evaluate")
        rows.append({"model": model, "method": "dense", "operating_point": "dense",
                     "top1": base["top1"], "macs_ratio": 1.0, "source": "dance_summary"})
    for _, r in summary.iterrows():
        pick = picks.get(r["model"])
        rows.append({"model": r["model"], "method": VARIANT_LABELS.get(r["variant"], r["variant"]),
                     "operating_point": str(int(r["operating_point"])), "top1": r["top1"],
                     "macs_ratio": r["macs_ratio"], "macs_ratio_p5": r["macs_ratio_p5"],
                     "macs_ratio_p95": r["macs_ratio_p95"], "source": "dance_summary",
                     "reported": bool(pick and r["variant"] == "dance" and
                                      int(pick["operating_point"]) == int(r["operating_point"]))})
    comparison = data.optional_csv(paths.comparison, data.COMPARISON_COLUMNS)
    if comparison is not None:
        # DANCE and its ablations ("dance-<variant>") come from the summary above
        method = comparison["method"].str.lower()
        others = comparison[~(method.str.startswith("dance") | (method == "dense"))]
        for _, r in others.iterrows():
            rows.append({"model": r["model"], "method": r["method"],
                         "operating_point": str(r["operating_point"]), "top1": r["top1"],
                         "macs_ratio": r["macs_ratio"], "source": "comparison"})
    frame = pd.DataFrame(rows)
    frame["reported"] = frame.get("reported", False).fillna(False).astype(bool)
    return frame


def build_f6(cfg: dict, artifact: Artifact) -> list[Path]:
    paths, plots, models = Paths(cfg), cfg["plots"], cfg["models"]
    frame = tradeoff_rows(paths, models, cfg["claims"]["accuracy_tolerance"])
    methods = list(dict.fromkeys(frame["method"]))
    style.apply(plots)
    col, marks = style.color_map(plots, methods), style.marker_map(methods)
    fig, axes = style.figure(plots, 1, len(models), wide=len(models) > 1,
                             height=plots["column_width"] * 0.8, sharey=True)
    for j, model in enumerate(models):
        ax = axes[0, j]
        part = frame[frame["model"] == model]
        for method in methods:
            pts = part[part["method"] == method].sort_values("macs_ratio")
            if pts.empty:
                continue
            x, y = 100 * pts["macs_ratio"], 100 * pts["top1"]
            if "macs_ratio_p5" in pts and pts["macs_ratio_p5"].notna().any():
                ax.hlines(y, 100 * pts["macs_ratio_p5"], 100 * pts["macs_ratio_p95"],
                          color=col[method], linewidth=0.6, alpha=0.6)
            ax.plot(x, y, marker=marks[method], color=col[method], label=method,
                    linestyle="-" if len(pts) > 1 else "none",
                    markersize=7 if method == "dense" else 4)
        chosen = part[part["reported"]]
        ax.plot(100 * chosen["macs_ratio"], 100 * chosen["top1"], "o", mfc="none", mec="k",
                ms=9, mew=0.8, label="reported DANCE point")
        style.panel_label(ax, model)
        ax.set_xlabel("effective MACs (% of dense)")
        if j == 0:
            ax.set_ylabel("top-1 (%)")
    handles, labels = [], []
    for ax in axes.ravel():
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    style.legend_below(fig, handles, labels, ncol=3)
    if not (frame["source"] == "comparison").any():
        fig.text(0.99, 0.99, "other methods: not available yet", ha="right", va="top",
                 fontsize=plots["font_size"] - 2, color="0.4")
    return style.save(fig, plots, paths, artifact.name, frame)


def clip_macs(paths: Paths, model: str, point: int) -> pd.DataFrame:
    """Per test clip: whole-network MAC ratio, difficulty, correct."""
    ev = data.read_json(paths.aap_eval(model, "dance", point), "python -m dance evaluate-aap")
    dec = data.csv(paths.aap_decisions(model, "dance", point), "python -m dance evaluate-aap")
    per_clip = dec.groupby("clip").agg(macs=("macs", "sum"), difficulty=("difficulty", "first"),
                                       correct=("correct", "first")).reset_index()
    per_clip["macs"] = per_clip["macs"] + ev["macs"]["dense_fixed"]
    per_clip["macs_ratio"] = per_clip["macs"] / ev["macs"]["dense"]
    rho = ev["difficulty_correlation"].get("spearman")
    return per_clip.assign(model=model, point=point, spearman=rho)


def build_f8(cfg: dict, artifact: Artifact) -> list[Path]:
    paths, plots = Paths(cfg), cfg["plots"]
    _, picks = data.reported_points(paths.dance_summary, cfg["models"],
                                    cfg["claims"]["accuracy_tolerance"])
    models = [m for m in cfg["models"] if m in picks]
    if not models:
        raise DanceError(f"{paths.dance_summary} has no DANCE operating point")
    frame = pd.concat([clip_macs(paths, m, int(picks[m]["operating_point"])) for m in models],
                      ignore_index=True)
    style.apply(plots)
    col = style.color_map(plots, ["correct", "wrong"])
    fig, axes = style.figure(plots, 1, len(models), wide=len(models) > 1,
                             height=plots["column_width"] * 0.75, sharey=True)
    for j, model in enumerate(models):
        ax = axes[0, j]
        part = frame[frame["model"] == model]
        for name, mark, sel in (("correct", "o", part["correct"] == 1),
                                ("wrong", "x", part["correct"] != 1)):
            ax.scatter(part.loc[sel, "difficulty"], 100 * part.loc[sel, "macs_ratio"], s=9,
                       marker=mark, color=col[name], label=f"prediction {name}",
                       linewidths=0.8, alpha=0.8)
        rho = part["spearman"].iloc[0]
        rho_text = "n/a" if pd.isna(rho) else f"{rho:+.2f}"
        style.panel_label(ax, f"{model} (point {int(part['point'].iloc[0])}), "
                              f"Spearman ρ = {rho_text}")
        ax.set_xlabel("clip difficulty (generator score)")
        if j == 0:
            ax.set_ylabel("effective MACs (% of dense)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    style.legend_below(fig, handles, labels, ncol=2)
    return style.save(fig, plots, paths, artifact.name, frame)
