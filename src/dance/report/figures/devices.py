"""F9: latency and energy per clip on every device, dense vs DANCE (``devices.csv``).

Rows the device stage could not measure (device not attached, no power rail readable) are
drawn as an empty slot labelled "not measured", with the paper's speed-up when it reports
one; nothing is estimated in their place. Until the device stage has run the figure says
"not available yet".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dance.paths import Paths
from dance.report import data, style
from dance.report.registry import Artifact

METRICS = [("latency_median_ms", "latency, median (ms)"),
           ("energy_j_per_clip", "energy per clip (J)")]


def build_f9(cfg: dict, artifact: Artifact) -> list[Path]:
    paths = Paths(cfg)
    frame = data.optional_csv(paths.devices_summary, data.DEVICE_COLUMNS)
    if frame is None:
        return style.unavailable(cfg, artifact.name, artifact.title,
                                 f"{paths.devices_summary.name} has not been produced (device stage)")
    frame = frame.assign(group=frame["device"] + "\n" + frame["model"])
    groups = list(dict.fromkeys(frame["group"]))
    methods = list(dict.fromkeys(frame["method"]))
    style.apply(cfg)
    col = style.color_map(cfg, methods)
    fig, axes = style.figure(cfg, len(METRICS), 1, wide=len(groups) > 4,
                             height=1.5 * len(METRICS) + 0.8, sharex=True)
    width = 0.8 / max(len(methods), 1)
    x = np.arange(len(groups))
    for r, (metric, label) in enumerate(METRICS):
        ax = axes[r, 0]
        for k, method in enumerate(methods):
            part = frame[frame["method"] == method].set_index("group")
            pos = x + (k - (len(methods) - 1) / 2) * width
            values = [part.loc[g, metric] if g in part.index else np.nan for g in groups]
            ax.bar(pos, values, width, color=col[method], label=method)
            for p, g, v in zip(pos, groups, values, strict=True):
                if g in part.index and (np.isnan(v) if isinstance(v, float) else v is None):
                    paper = part.loc[g, "paper_speedup"]
                    note = "not\nmeasured" + (f"\n(paper {paper:.2f}×)"
                                              if r == 0 and method.lower() != "dense"
                                              and not np.isnan(paper) else "")
                    ax.text(p, 0.02, note, transform=ax.get_xaxis_transform(), ha="center",
                            va="bottom", fontsize=cfg["plots"]["font_size"] - 3, color="0.35")
        ax.set_ylabel(label)
        ax.set_xlim(-0.5, len(groups) - 0.5)
        if frame[metric].isna().all():        # nothing measured: no invented scale
            ax.set_ylim(0, 1)
            ax.set_yticks([])
    axes[-1, 0].set_xticks(x, groups)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    style.legend_below(fig, handles, labels, ncol=min(len(labels), 4))
    return style.save(fig, cfg, artifact.name, frame.drop(columns="group"))
