"""AVA: its loss terms over fine-tuning (F2) and the magnitude profiles it reshapes (F5).

F2 plots, per model and epoch, the normalised variances of the frame, channel and feature
magnitude profiles (L_FR, L_CH, L_FE) and their weighted sum σ²_AVA that AVA pushes up,
beside the task loss and validation top-1 (``ava_history.csv``). F5 plots the sorted
magnitude profiles of a few test clips at the first, middle and last pruned layer, before
and after AVA (``ava_profiles.csv``): each profile sums to 1, so it is shown relative to
the uniform share 1/n (1 = every frame/channel/feature alike); a steeper curve is a more
uneven, more prunable activation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from dance.paths import Paths
from dance.report import data, style
from dance.report.registry import Artifact

TERMS = {"L_FR": "$L_{FR}$ (frames)", "L_CH": "$L_{CH}$ (channels)",
         "L_FE": "$L_{FE}$ (features)", "sigma2_ava": r"$\sigma^2_{AVA}$ (weighted sum)"}
TASK = {"ce": "cross-entropy (train)", "val_loss": "loss (validation)"}


def build_f2(cfg: dict, artifact: Artifact) -> list[Path]:
    paths, plots = Paths(cfg), cfg["plots"]
    frames = []
    for model in cfg["models"]:
        hist = data.csv(paths.history(model, "ava"), "python -m dance train-ava")
        frames.append(hist.assign(model=model))
    frame = pd.concat(frames, ignore_index=True)
    terms = [t for t in TERMS if t in frame.columns]
    task = [t for t in TASK if t in frame.columns]
    style.apply(plots)
    models = cfg["models"]
    fig, axes = style.figure(plots, len(models), 2, height=1.35 * len(models) + 0.75,
                             sharex=True)
    col = style.color_map(plots, [*terms, *task, "val_top1"])
    marks = style.marker_map([*terms, *task, "val_top1"])
    legend_axes = [axes[0, 0], axes[0, 1]]
    for r, model in enumerate(models):
        part = frame[frame["model"] == model]
        ax = axes[r, 0]
        for t in terms:
            ax.plot(part["epoch"], part[t], marker=marks[t], color=col[t], label=TERMS[t])
        ax.set_ylabel("normalised variance")
        style.panel_label(ax, model)
        ax2 = axes[r, 1]
        for t in task:
            ax2.plot(part["epoch"], part[t], marker=marks[t], color=col[t], label=TASK[t])
        ax2.set_ylabel("loss")
        if "val_top1" in part:
            ax3 = ax2.twinx()
            ax3.plot(part["epoch"], 100 * part["val_top1"], marker=marks["val_top1"],
                     color=col["val_top1"], linestyle="--", label="top-1 (validation, %)")
            ax3.set_ylabel("val. top-1 (%)")
            ax3.grid(False)
            if r == 0:
                legend_axes.append(ax3)
    first, last = frame["epoch"].min(), frame["epoch"].max()
    for ax in axes[-1]:             # whole epochs only, also for a one-epoch run
        ax.set_xlabel("AVA epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.set_xlim(first - 0.5, last + 0.5)
    handles, labels = [], []
    for ax in legend_axes:
        h, lab = ax.get_legend_handles_labels()
        handles += h
        labels += lab
    style.legend_below(fig, handles, labels, ncol=2)
    keep = ["model", "epoch", *terms, *task, *(["val_top1"] if "val_top1" in frame else [])]
    return style.save(fig, plots, paths, artifact.name, frame[keep])


def build_f5(cfg: dict, artifact: Artifact) -> list[Path]:
    paths, plots = Paths(cfg), cfg["plots"]
    frames = []
    for model in cfg["models"]:
        prof = data.csv(paths.ava_profiles(model), "python -m dance ava-stats")
        frames.append(prof.assign(model=model))
    prof = pd.concat(frames, ignore_index=True)
    # Per (model, stage, layer, dim): profile length n, rank normalised to [0, 1], value × n.
    n = prof.groupby(["model", "stage", "layer", "dim", "clip"])["rank"].transform("max") + 1
    prof = prof.assign(rank_share=prof["rank"] / (n - 1).clip(lower=1), relative=prof["value"] * n)
    tidy = (prof.groupby(["model", "stage", "layer", "dim", "rank"], sort=False)
            .agg(rank_share=("rank_share", "first"), relative=("relative", "mean"),
                 clips=("clip", "nunique")).reset_index())
    dims = list(dict.fromkeys(tidy["dim"]))
    models = cfg["models"]
    style.apply(plots)
    fig, axes = style.figure(plots, len(models), len(dims), wide=True,
                             height=1.45 * len(models) + 0.7, sharey=True)
    stages = list(dict.fromkeys(tidy["stage"]))
    col = style.color_map(plots, stages)
    for r, model in enumerate(models):
        part = tidy[tidy["model"] == model]
        layers = list(dict.fromkeys(part["layer"]))
        for j, dim in enumerate(dims):
            ax = axes[r, j]
            for stage in stages:
                for k, layer in enumerate(layers):
                    line = part[(part["stage"] == stage) & (part["layer"] == layer)
                                & (part["dim"] == dim)]
                    if line.empty:
                        continue
                    ax.plot(line["rank_share"], line["relative"], color=col[stage],
                            linestyle=style.LINESTYLES[k % len(style.LINESTYLES)])
            ax.axhline(1.0, color="0.5", linewidth=0.6)
            style.log_axis(ax, "y")
            ax.set_title(f"{model}: {style.DIM_LABELS.get(dim, dim)}", loc="left")
            if r == len(models) - 1:
                ax.set_xlabel("rank (0 = largest, share of n)")
            if j == 0:
                ax.set_ylabel("magnitude × n")
    # colour = stage, line style = depth of the layer (first, middle, last pruned layer)
    handles = [Line2D([], [], color=col[st]) for st in stages]
    labels = [style.STAGE_LABELS.get(st, st) for st in stages]
    depth = ["first pruned layer", "middle layer", "last layer"]
    n_layers = tidy.groupby("model")["layer"].nunique().max()
    handles += [Line2D([], [], color="0.3", linestyle=style.LINESTYLES[k])
                for k in range(n_layers)]
    labels += depth[:n_layers] if n_layers <= 3 else [f"layer {k}" for k in range(n_layers)]
    style.legend_below(fig, handles, labels, ncol=len(stages) + n_layers)
    tidy["relative"] = tidy["relative"].astype(np.float64)
    return style.save(fig, plots, paths, artifact.name, tidy)
