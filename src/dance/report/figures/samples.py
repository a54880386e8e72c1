"""Figure of example clips: one row per class, frames left to right.

Shows what the classes look like and how much nuisance a clip carries, so a reader can
judge the task. It reads only the shard format (`load_split`), so it works for the
generated set and for cached real data sets alike; the CSV beside the figure names every
clip shown (split index, label, difficulty), so the figure can be traced to the data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dance.data.shards import load_split
from dance.io import atomic_paths, dump_csv


def _pick(values: list[int], k: int | None) -> list[int]:
    """At most k items, evenly spaced and including the first and last."""
    if k is None or len(values) <= k:
        return list(values)
    idx = np.unique(np.linspace(0, len(values) - 1, k).round().astype(int))
    return [values[i] for i in idx]


def plot_samples(data_dir: Path, out_png: Path, out_pdf: Path, per_class: int = 2,
                 split: str = "test", max_classes: int | None = 24,
                 max_frames: int | None = 8) -> None:
    """Plot the first `per_class` clips of each class of `split` (PNG, PDF and CSV).

    Each row is one class; its clips sit side by side, `max_frames` evenly spaced frames
    each. Data sets with many classes (UCF101) show `max_classes` evenly spaced classes,
    so the figure stays legible; the CSV lists exactly what is shown.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_png, out_pdf = Path(out_png), Path(out_pdf)
    clips, meta, manifest = load_split(data_dir, split)
    classes: list[str] = list(manifest["classes"])
    T = int(manifest["clip_shape"][0])
    frames = _pick(list(range(T)), max_frames)
    shown = _pick(list(range(len(classes))), max_classes)
    labels = np.array([int(m["label"]) for m in meta], dtype=int)

    rows, chosen = [], {}
    for c in shown:
        idx = np.flatnonzero(labels == c)[:per_class].tolist()
        chosen[c] = idx
        for slot, i in enumerate(idx):
            rows.append({"row": len(chosen) - 1, "label": c, "class_name": classes[c],
                         "slot": slot, "split": split, "index": int(meta[i]["index"]),
                         "difficulty": meta[i].get("difficulty", ""),
                         "frames": " ".join(map(str, frames))})

    # One mosaic image in one axes (not one axes per frame): fast to draw and to save as
    # PDF even for many classes, and the pixels are shown unresampled-looking (nearest).
    H, W = int(manifest["clip_shape"][1]), int(manifest["clip_shape"][2])
    pad, gap = max(H // 16, 1), max(W // 3, 2)          # between frames / between clips
    clip_w = len(frames) * (W + pad) - pad
    n_rows = len(shown)
    mosaic = np.ones((n_rows * (H + pad) - pad, per_class * (clip_w + gap) - gap, 3),
                     np.uint8) * 255
    for r, c in enumerate(shown):
        for k, i in enumerate(chosen[c]):
            for j, t in enumerate(frames):
                y0, x0 = r * (H + pad), k * (clip_w + gap) + j * (W + pad)
                mosaic[y0 : y0 + H, x0 : x0 + W] = clips[i, t]

    cell = 0.62   # inches per frame
    width = 1.9 + cell * mosaic.shape[1] / W
    height = 0.55 + cell * mosaic.shape[0] / H
    fig, ax = plt.subplots(figsize=(width, height))
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_yticks([r * (H + pad) + H / 2 - 0.5 for r in range(n_rows)],
                  [classes[c].replace("_", " ") for c in shown], fontsize=8)
    ax.set_xticks([k * (clip_w + gap) + j * (W + pad) + W / 2 - 0.5
                   for k in range(per_class) for j in range(len(frames))],
                  [f"t={t}" for _ in range(per_class) for t in frames], fontsize=7)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    for r, c in enumerate(shown):
        for k, i in enumerate(chosen[c]):
            diff = meta[i].get("difficulty", "")
            if diff not in ("", None):
                ax.text(k * (clip_w + gap) + 1, r * (H + pad) + 1, f"d={float(diff):.2f}",
                        fontsize=5.5, va="top", ha="left", color="white",
                        bbox={"boxstyle": "square,pad=0.1", "fc": "black", "alpha": 0.55,
                              "lw": 0})
    name = manifest.get("name", "data set")
    note = " (d = stored difficulty)" if any(r["difficulty"] not in ("", None) for r in rows) \
        else ""
    fig.suptitle(f"{name}: first {per_class} {split} clip(s) per class{note}", fontsize=9)
    fig.subplots_adjust(left=1.7 / width, right=1 - 0.1 / width, top=1 - 0.5 / height,
                        bottom=0.05 / height)
    # PNG, PDF and CSV renamed into place together: a kill never leaves a mixed set
    with atomic_paths([out_png, out_pdf, out_png.with_suffix(".csv")]) as (png, pdf, table):
        from dance.report.style import savefig

        savefig(fig, png, "png", 150)
        savefig(fig, pdf, "pdf", 150)
        plt.close(fig)
        dump_csv(table, rows, fieldnames=["row", "label", "class_name", "slot", "split",
                                          "index", "difficulty", "frames"])
