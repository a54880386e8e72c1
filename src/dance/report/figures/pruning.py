"""What AAP prunes: one clip's tensors (F1), the pattern over sample clips (F3) and the
per-layer pruning ratios (F7).

F7 is at the reported DANCE operating point (:func:`dance.report.data.select_point`), like
every table. F1 and F3 illustrate the decisions, so they use the point with the fewest MACs
(:func:`dance.report.data.illustrative_point`), where the controller prunes most. F1 shows
the saved clip that prunes in the most (layer, dimension) pairs. F3 shows clips spread
evenly over the difficulty range of the test split. Both say so in their titles.

The masks are those of the *input* of each pruned conv (what the next conv reads): F1 from
the full masks saved for the first test clips (``*_masks.npz``), F3 from the per-clip ×
layer counts (``*_decisions.csv``), F7 from the test-split means of the evaluation JSON.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from dance.errors import DanceError
from dance.paths import Paths
from dance.report import data, style
from dance.report.registry import Artifact

DIMS = ("frames", "channels", "features")


def _pick_layers(names: list[str], k: int = 4) -> list[str]:
    """At most k layers, evenly spaced from the first to the last."""
    if len(names) <= k:
        return list(names)
    idx = np.unique(np.linspace(0, len(names) - 1, k).round().astype(int))
    return [names[i] for i in idx]


def build_f1(cfg: dict, artifact: Artifact) -> list[Path]:
    """Per shown layer: the frame × channel grid (kept, or dropped with its frame or its
    channel) and the spatial feature mask, for the first test clip."""
    paths, plots = Paths(cfg), cfg["plots"]
    model = cfg["models"][0]
    point = data.illustrative_point(paths.dance_summary, model)
    path = paths.aap_masks(model, "dance", point)
    if not path.exists():
        raise DanceError(f"result file not found: {path} (made by `python -m dance "
                         f"evaluate-aap`)")
    masks = np.load(path)
    clip = most_pruned_clip(masks)
    layers = pruned_layers(masks, clip)
    style.apply(plots)
    col = style.colors(plots, 3)
    cmap_tc = ListedColormap(["#e6e6e6", col[1], col[0]])   # frame dropped, channel dropped, kept
    cmap_fe = ListedColormap(["#e6e6e6", col[0]])
    fig, axes = style.figure(plots, len(layers), 2, height=0.85 * len(layers) + 0.7,
                             gridspec_kw={"width_ratios": [2.2, 1]})
    rows: list[dict] = []
    for r, name in enumerate(layers):
        fr = masks[f"{name}:frames"][clip].astype(bool)
        ch = masks[f"{name}:channels"][clip].astype(bool)
        fe = masks[f"{name}:features"][clip].astype(bool)
        grid = np.where(~fr[:, None], 0, np.where(~ch[None, :], 1, 2))
        ax = axes[r, 0]
        ax.imshow(grid, cmap=cmap_tc, vmin=0, vmax=2, aspect="auto", interpolation="nearest")
        small = plots["font_size"] - 1
        ax.set_ylabel(f"{name}\nframe")
        ax.set_yticks(sorted({0, len(fr) - 1}))
        ax.grid(False)
        ax.set_title(f"{fr.sum()}/{fr.size} frames, {ch.sum()}/{ch.size} channels kept",
                     loc="left", fontsize=small)
        if r == len(layers) - 1:
            ax.set_xlabel("channel")
        ax2 = axes[r, 1]
        ax2.imshow(fe.astype(int), cmap=cmap_fe, vmin=0, vmax=1, interpolation="nearest")
        ax2.set_xticks([])
        ax2.set_yticks([])
        ax2.grid(False)
        ax2.set_title(f"{fe.sum()}/{fe.size} feat.", loc="left", fontsize=small)
        if r == len(layers) - 1:
            ax2.set_xlabel("H × W")
        rows += [{"layer": name, "dim": "frames", "index": i, "kept": int(v)}
                 for i, v in enumerate(fr)]
        rows += [{"layer": name, "dim": "channels", "index": i, "kept": int(v)}
                 for i, v in enumerate(ch)]
        rows += [{"layer": name, "dim": "features", "index": i, "kept": int(v)}
                 for i, v in enumerate(fe.ravel())]
    handles = [Patch(color=col[0], label="kept"), Patch(color=col[1], label="channel pruned"),
               Patch(color="#e6e6e6", label="frame / feature pruned")]
    style.legend_below(fig, handles, [h.get_label() for h in handles])
    fig.suptitle(f"{model}, DANCE point {point} (fewest MACs), test clip "
                 f"{int(masks['clip'][clip])} (difficulty {float(masks['difficulty'][clip]):.2f})"
                 f"\nthe most-pruned saved clip and its most pruned layers",
                 fontsize=plots["font_size"] - 1)
    frame = pd.DataFrame(rows).assign(model=model, point=point, clip=int(masks["clip"][clip]))
    return style.save(fig, plots, paths, artifact.name, frame)


def pruned_layers(masks, clip: int, k: int = 4) -> list[str]:
    """Up to `k` layers, in network order: those where `clip` loses the largest share of
    its entries (over the three dimensions); evenly spaced layers when none prunes."""
    names = [str(n) for n in masks["layers"]]
    share = {n: sum(1 - masks[f"{n}:{d}"][clip].astype(bool).mean() for d in DIMS)
             for n in names}
    pruned = sorted((n for n in names if share[n] > 0), key=lambda n: -share[n])[:k]
    return [n for n in names if n in pruned] if pruned else _pick_layers(names, k)


def most_pruned_clip(masks) -> int:
    """Index of the saved clip whose decisions prune in the most (layer, dimension) pairs,
    then the most entries overall (ties: the first)."""
    layers = [str(n) for n in masks["layers"]]
    n = len(masks["clip"])
    score = np.zeros((n, 2))
    for name in layers:
        for dim in DIMS:
            m = masks[f"{name}:{dim}"].reshape(n, -1).astype(bool)
            pruned = (~m).mean(1)
            score[:, 0] += pruned > 0
            score[:, 1] += pruned
    return int(np.lexsort((-score[:, 1], -score[:, 0]))[0])


def spread_clips(dec: pd.DataFrame, n: int) -> list[int]:
    """`n` clips evenly spaced over the difficulty order of the clips in `dec`."""
    order = (dec[["clip", "difficulty"]].drop_duplicates("clip")
             .sort_values(["difficulty", "clip"])["clip"].tolist())
    if len(order) <= n:
        return order
    return [order[i] for i in np.linspace(0, len(order) - 1, n).round().astype(int)]


def _decisions(paths: Paths, model: str, point: int) -> pd.DataFrame:
    path = paths.aap_decisions(model, "dance", point)
    return data.csv(path, "python -m dance evaluate-aap")


def build_f3(cfg: dict, artifact: Artifact) -> list[Path]:
    """Heat maps clip × layer of the share pruned, one per dimension."""
    paths, plots = Paths(cfg), cfg["plots"]
    model = cfg["models"][0]
    point = data.illustrative_point(paths.dance_summary, model)
    dec = _decisions(paths, model, point)
    n = plots["example_clips"]
    chosen = spread_clips(dec, n)
    dec = dec[dec["clip"].isin(chosen)]
    layers = list(dict.fromkeys(dec["layer"]))
    tidy = []
    for dim in DIMS:
        share = 1 - dec[f"{dim}_kept"] / dec[f"{dim}_total"]
        tidy.append(dec[["clip", "layer", "difficulty"]].assign(dim=dim, pruned_share=share))
    frame = pd.concat(tidy, ignore_index=True)
    style.apply(plots)
    fig, axes = style.figure(plots, 1, 3, wide=True, height=0.9 + 0.16 * min(n, dec["clip"].nunique()),
                             sharey=True)
    image = None
    for j, dim in enumerate(DIMS):
        ax = axes[0, j]
        grid = (frame[frame["dim"] == dim].pivot(index="clip", columns="layer",
                                                 values="pruned_share")[layers])
        grid = grid.loc[chosen]                                  # by difficulty
        image = ax.imshow(grid.to_numpy(), cmap="cividis_r", vmin=0, vmax=1, aspect="auto",
                          interpolation="nearest")
        ax.set_xticks(range(len(layers)), layers, rotation=90)
        diff = dec.drop_duplicates("clip").set_index("clip")["difficulty"]
        ax.set_yticks(range(len(grid)), [f"{c} ({diff[c]:.2f})" for c in grid.index])
        ax.grid(False)
        ax.set_title(f"{dim} pruned", loc="left")
        ax.set_xlabel("layer (input of)")
        if j == 0:
            ax.set_ylabel("test clip (difficulty)")
    cbar = fig.colorbar(image, ax=axes[0, :].tolist(), shrink=0.9, pad=0.01)
    cbar.set_label("share pruned")
    fig.suptitle(f"{model}, DANCE point {point} (fewest MACs): {grid.shape[0]} test clips "
                 f"spread over the difficulty range")
    return style.save(fig, plots, paths, artifact.name, frame.assign(model=model, point=point))


def build_f7(cfg: dict, artifact: Artifact) -> list[Path]:
    """Per model: share of frames, channels and features pruned at each layer (bars) and
    the share of that layer's MACs saved (markers), test-split means."""
    paths, plots = Paths(cfg), cfg["plots"]
    _, picks = data.reported_points(paths.dance_summary, cfg["models"],
                                    cfg["claims"]["accuracy_tolerance"])
    models = [m for m in cfg["models"] if m in picks]
    if not models:
        raise DanceError(f"{paths.dance_summary} has no DANCE operating point")
    rows = []
    for model in models:
        point = int(picks[model]["operating_point"])
        ev = data.read_json(paths.aap_eval(model, "dance", point), "python -m dance evaluate-aap")
        for i, layer in enumerate(ev["per_layer"]):
            base = {"model": model, "point": point, "layer": layer["layer"], "position": i,
                    "pruned_layer": layer["pruned"], "macs_saved": 1 - layer["macs_ratio"]}
            rows += [{**base, "dim": d, "pruned_share": 1 - layer[f"{d}_kept"]} for d in DIMS]
    frame = pd.DataFrame(rows)
    style.apply(plots)
    col = style.color_map(plots, DIMS)
    fig, axes = style.figure(plots, len(models), 1, height=1.45 * len(models) + 0.6)
    width = 0.8 / len(DIMS)
    for r, model in enumerate(models):
        ax = axes[r, 0]
        part = frame[frame["model"] == model]
        layers = list(dict.fromkeys(part["layer"]))
        x = np.arange(len(layers))
        for j, dim in enumerate(DIMS):
            vals = part[part["dim"] == dim].set_index("layer").loc[layers, "pruned_share"]
            ax.bar(x + (j - 1) * width, vals, width, color=col[dim], label=f"{dim} pruned",
                   hatch=("", "//", "..")[j], edgecolor="white", linewidth=0.3)
        saved = part.drop_duplicates("layer").set_index("layer").loc[layers, "macs_saved"]
        ax.plot(x, saved, "kD", ms=3.5, label="layer MACs saved", linestyle="none")
        ax.set_xticks(x, layers, rotation=90 if len(layers) > 8 else 0)
        ax.set_ylim(0, 1)
        ax.set_ylabel("share of layer")
        style.panel_label(ax, f"{model} (point {int(picks[model]['operating_point'])})")
    axes[-1, 0].set_xlabel("layer (input of)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    style.legend_below(fig, handles, labels, ncol=2)
    return style.save(fig, plots, paths, artifact.name, frame)
