"""F10: energy against accuracy for every method (energy model), and DANCE's
energy-efficiency ratios at matched accuracy.

Left: per model, top-1 vs the energy model's estimate per clip relative to the dense
network (``comparison.csv``, first configured preset). Right: per model and preset from
``comparison_matched.csv``, the matched-accuracy ratio against the best compared method
(bars; dense is never one, and a missing bar says why) and against dense (circles), with
the paper's "up to 1.47×" as a reference line. Energies are model estimates, never
measurements. Until the comparison stage has run the figure says "not available yet".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dance.paths import Paths
from dance.report import data, style
from dance.report.registry import Artifact

PAPER_EFFICIENCY = 1.47


def build_f10(cfg: dict, artifact: Artifact) -> list[Path]:
    paths, plots = Paths(cfg), cfg["plots"]
    matched = data.optional_csv(paths.comparison_matched, data.MATCHED_COLUMNS)
    comparison = data.optional_csv(paths.comparison, ["method", "model", "top1"])
    if matched is None or comparison is None:
        missing = paths.comparison_matched if matched is None else paths.comparison
        return style.unavailable(plots, paths, artifact.name, artifact.title,
                                 f"{missing.name} has not been produced (comparison stage)")
    preset = cfg["energy"]["presets"][0]
    energy_col = f"energy_{preset}"
    style.apply(plots)
    fig, axes = style.figure(plots, 1, 2, wide=True, height=plots["column_width"] * 0.75,
                             gridspec_kw={"width_ratios": [1.6, 1]})
    ax = axes[0, 0]
    rows = []
    methods = list(dict.fromkeys(comparison["method"]))
    col, marks = style.color_map(plots, methods), style.marker_map(methods)
    models = list(dict.fromkeys(comparison["model"]))
    for k, model in enumerate(models):
        part = comparison[comparison["model"] == model]
        dense = part[part["method"].str.lower() == "dense"]
        ref = float(dense[energy_col].iloc[0]) if len(dense) and energy_col in part else np.nan
        for method in methods:
            pts = part[part["method"] == method]
            if pts.empty or energy_col not in pts:
                continue
            rel = pts[energy_col] / ref if ref == ref else pts[energy_col]
            ax.plot(100 * rel, 100 * pts["top1"], marker=marks[method], color=col[method],
                    linestyle=style.LINESTYLES[k % len(style.LINESTYLES)] if len(pts) > 1
                    else "none", label=method if k == 0 else None)
            rows += [{"panel": "energy_vs_top1", "model": model, "method": method,
                      "operating_point": p, "top1": t, "energy_relative_to_dense": e,
                      "preset": preset}
                     for p, t, e in zip(pts["operating_point"], pts["top1"], rel, strict=True)]
    ax.set_xlabel(f"energy per clip, {preset} model (% of dense)")
    ax.set_ylabel("top-1 (%)")
    bx = axes[0, 1]
    labels = [f"{m}\n{p}" for m, p in zip(matched["model"], matched["preset"], strict=True)]
    bx.bar(range(len(matched)), matched["efficiency_ratio"], color=style.colors(plots, 1)[0],
           label="vs best compared method")
    bx.plot(range(len(matched)), pd.to_numeric(matched["efficiency_vs_dense"], errors="coerce"),
            linestyle="none", marker="o", markerfacecolor="none", color="k", label="vs dense")
    bx.axhline(PAPER_EFFICIENCY, color="k", linestyle="--", linewidth=0.8,
               label=f"paper: up to {PAPER_EFFICIENCY}×")
    bx.axhline(1.0, color="0.5", linewidth=0.6)
    ratios = pd.to_numeric(matched["efficiency_ratio"], errors="coerce")
    vs_dense = pd.to_numeric(matched["efficiency_vs_dense"], errors="coerce")
    for i, (ratio, point) in enumerate(zip(ratios, matched["dance_point"], strict=True)):
        if ratio != ratio:   # NaN: no DANCE point, or no compared method, within tolerance
            text = ("no DANCE point\nwithin tolerance" if point != point or point is None
                    else "no compared method\nwithin tolerance")
            bx.text(i, 0.05, text, rotation=90, ha="center", va="bottom",
                    fontsize="small", color="0.3")
    top = np.nanmax([*ratios, *vs_dense]) if (ratios.notna().any() or vs_dense.notna().any()) \
        else 0
    bx.set_ylim(0, max(1.6, float(top) * 1.1))
    bx.set_xticks(range(len(matched)), labels)
    bx.set_ylabel("DANCE efficiency (×)")
    rows += [{"panel": "matched_ratio", "model": r["model"], "preset": r["preset"],
              "method": r["best_other_method"], "operating_point": r["best_other_point"],
              "efficiency_ratio": r["efficiency_ratio"],
              "efficiency_vs_dense": r["efficiency_vs_dense"]} for _, r in matched.iterrows()]
    handles, names = [], []
    if len(models) > 1:      # line style = model, colour/marker = method
        from matplotlib.lines import Line2D
        for k, model in enumerate(models):
            handles.append(Line2D([], [], color="0.3",
                                  linestyle=style.LINESTYLES[k % len(style.LINESTYLES)]))
            names.append(model)
    for a in (ax, bx):
        h, lab = a.get_legend_handles_labels()
        handles += h
        names += lab
    style.legend_below(fig, handles, names, ncol=4)
    return style.save(fig, plots, paths, artifact.name, rows)
