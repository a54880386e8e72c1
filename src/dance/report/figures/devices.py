"""F9: latency and energy per clip on every device, dense vs DANCE (``devices.csv``).

Speed-up over dense per device and model (one bar per DANCE point), with the paper's
speed-up as a star where it reports one. A device group that was not measured carries one
"not measured" label; energy gets a panel only where some device measured it, otherwise a
single line says it was not measured and why. Nothing is estimated in place of a
measurement. Until the device stage has run the figure says
"not available yet".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dance.paths import Paths
from dance.report import data, style
from dance.report.registry import Artifact


def _measured(frame, metric: str):
    return frame[frame["status"].str.lower().str.startswith("measured")
                 & frame[metric].notna()]


def build_f9(cfg: dict, artifact: Artifact) -> list[Path]:
    """Top: speed-up over dense per device × model, one bar per DANCE point where measured;
    a device group that was not measured gets one "not measured" label and the paper's
    speed-up as a marker. Bottom: energy per clip where any device measured it; otherwise
    no empty panel, one line saying energy was not measured and why."""
    paths, plots = Paths(cfg), cfg["plots"]
    frame = data.optional_csv(paths.devices_summary, data.DEVICE_COLUMNS)
    if frame is None:
        return style.unavailable(plots, paths, artifact.name, artifact.title,
                                 f"{paths.devices_summary.name} has not been produced (device stage)")
    frame = frame.assign(group=frame["device"] + "\n" + frame["model"])
    groups = list(dict.fromkeys(frame["group"]))
    points = [m for m in dict.fromkeys(frame["method"]) if m.lower() != "dense"]
    energy = _measured(frame, "energy_j_per_clip")
    style.apply(plots)
    col = style.color_map(plots, points)
    rows_n = 2 if len(energy) else 1
    fig, axes = style.figure(plots, rows_n, 1, wide=len(groups) > 4,
                             height=1.7 * rows_n + 0.9, sharex=True)
    width = 0.8 / max(len(points), 1)
    x = np.arange(len(groups))
    ax = axes[0, 0]
    speed = _measured(frame, "speedup_vs_dense")
    paper_drawn = False
    for g, group in enumerate(groups):
        part = frame[frame["group"] == group]
        if speed[speed["group"] == group].empty:
            ax.text(g, 0.5, "not measured", transform=ax.get_xaxis_transform(), ha="center",
                    va="center", fontsize=plots["font_size"] - 2, color="0.35")
        paper = part["paper_speedup"].dropna()
        if len(paper):
            ax.plot([g], [float(paper.iloc[0])], marker="*", markersize=9, color="k",
                    linestyle="none", label=None if paper_drawn else "paper-reported")
            paper_drawn = True
    for k, method in enumerate(points):
        part = speed[speed["method"] == method].set_index("group")
        pos = x + (k - (len(points) - 1) / 2) * width
        values = [float(part.loc[g, "speedup_vs_dense"]) if g in part.index else np.nan
                  for g in groups]
        ax.bar(pos, values, width, color=col[method], label=method)
    ax.axhline(1.0, color="0.5", linewidth=0.6)
    ax.set_ylabel("speed-up over dense (×)")
    ax.set_xlim(-0.5, len(groups) - 0.5)
    if rows_n == 2:
        bx = axes[1, 0]
        methods = list(dict.fromkeys(frame["method"]))
        ecol = style.color_map(plots, methods)
        ew = 0.8 / max(len(methods), 1)
        for k, method in enumerate(methods):
            part = energy[energy["method"] == method].set_index("group")
            pos = x + (k - (len(methods) - 1) / 2) * ew
            bx.bar(pos, [1e3 * float(part.loc[g, "energy_j_per_clip"]) if g in part.index
                         else np.nan for g in groups], ew, color=ecol[method])
        for g, group in enumerate(groups):
            if energy[energy["group"] == group].empty:
                bx.text(g, 0.5, "not measured", transform=bx.get_xaxis_transform(),
                        ha="center", va="center", fontsize=plots["font_size"] - 2,
                        color="0.35")
        bx.set_ylabel("energy per clip (mJ)")
    axes[-1, 0].set_xticks(x, groups)
    if rows_n == 1:
        reasons = frame.loc[frame["device"] == "host_cpu", "energy_status"].dropna()
        host = str(reasons.iloc[0]) if len(reasons) else "no power source"
        ax.set_title(f"energy per clip: not measured on any device (host: {host})",
                     fontsize=plots["font_size"] - 2, color="0.35", loc="left")
    handles, labels = ax.get_legend_handles_labels()
    style.legend_below(fig, handles, labels, ncol=min(len(labels), 4))
    return style.save(fig, plots, paths, artifact.name, frame.drop(columns="group"))
