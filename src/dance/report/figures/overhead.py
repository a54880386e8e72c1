"""F4: what DANCE adds at inference against what it saves, per model.

At the reported operating point (evaluation JSON ``overhead`` and ``macs``): the dense 3D
CNN, the same network as pruned by DANCE (mean over test clips), the first-layer
statistics the controller reads ("AVA modules" at inference), the controller MLP and the
pruning function's profile sums. Operations: MACs for the networks and the controller,
element operations (sums, squares, max) for the statistics and the pruning function, as
the evaluation counts them; log scale, each bar labelled with its share of the dense MACs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dance.paths import Paths
from dance.report import data, style
from dance.report.registry import Artifact

PARTS = [("dense", "3D CNN, dense\n(MACs)"), ("dance", "3D CNN, DANCE\n(MACs, mean)"),
         ("stats", "first-layer stats\n(element ops)"), ("controller", "AAP controller\n(MACs)"),
         ("pruning", "pruning function\n(element ops)")]


def build_f4(cfg: dict, artifact: Artifact) -> list[Path]:
    paths, plots = Paths(cfg), cfg["plots"]
    _, picks = data.reported_points(paths.dance_summary, cfg["models"],
                                    cfg["claims"]["accuracy_tolerance"])
    rows = []
    for model in cfg["models"]:
        if model not in picks:
            continue
        point = int(picks[model]["operating_point"])
        ev = data.read_json(paths.aap_eval(model, "dance", point), "python -m dance evaluate-aap")
        oh, macs = ev["overhead"], ev["macs"]
        values = {"dense": macs["dense"], "dance": macs["clip_mean"],
                  "stats": oh["stats_ops"], "controller": oh["controller_macs"],
                  "pruning": oh["pruning_ops_mean"]}
        rows += [{"model": model, "point": point, "part": key, "label": label,
                  "ops": float(values[key]), "share_of_dense": float(values[key]) / macs["dense"]}
                 for key, label in PARTS]
    frame = pd.DataFrame(rows)
    style.apply(plots)
    models = list(dict.fromkeys(frame["model"]))
    col = style.color_map(plots, models)
    fig, axes = style.figure(plots, height=0.8 + 0.3 * len(PARTS) * len(models))
    ax = axes[0, 0]
    bar_h = 0.8 / len(models)
    y = np.arange(len(PARTS))
    hatches = ("", "//", "..", "xx")
    for k, model in enumerate(models):
        part = frame[frame["model"] == model].set_index("part").loc[[p for p, _ in PARTS]]
        pos = y + (k - (len(models) - 1) / 2) * bar_h
        ax.barh(pos, part["ops"], bar_h, color=col[model], hatch=hatches[k % len(hatches)], edgecolor="white", linewidth=0.3,
                label=model)
        for yy, v, s in zip(pos, part["ops"], part["share_of_dense"], strict=True):
            ax.text(v * 1.15, yy, f"{100 * s:.2g}%" if s < 0.995 else "100%", va="center",
                    fontsize=plots["font_size"] - 2)
    style.log_axis(ax, "x")
    ax.set_yticks(y, [label for _, label in PARTS])
    ax.invert_yaxis()
    ax.set_xlabel("operations per clip (log scale)")
    ax.set_xlim(right=frame["ops"].max() * 20)
    handles, labels = ax.get_legend_handles_labels()
    style.legend_below(fig, handles, labels, ncol=len(models))
    return style.save(fig, plots, paths, artifact.name, frame)
