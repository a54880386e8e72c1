"""The one look and the one writer of every paper figure.

Figures are sized for a two-column paper (``plots.column_width`` inches, 3.4 by default;
``wide`` figures span both columns), use the config's seaborn palette (colour-blind-safe
by default) with distinct markers as well, so that no series is told apart by colour alone,
and put legends outside the axes so that they never hide data. :func:`save` writes PNG and
PDF with the plotted data as a CSV beside them (the three renamed into place together), so
each figure can be traced to numbers; PDFs carry no creation date, so the same data give the same bytes.

The palettes are seaborn's (``colorblind`` by default), written out here so that a figure
job does not import seaborn, whose scipy import alone takes ~3 s per job (ten figure jobs
re-run after a plotting change; a test checks the colours against seaborn's).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from dance.io import atomic_paths, dump_csv  # noqa: E402
from dance.paths import Paths  # noqa: E402

WIDE = 2.06          # a two-column figure is this many column widths
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
LINESTYLES = ("-", "--", ":", "-.")
FORMATS = ("png", "pdf")
# seaborn 0.13 `color_palette(name).as_hex()`
PALETTES = {
    "colorblind": ["#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc", "#ca9161", "#fbafe4",
                   "#949494", "#ece133", "#56b4e9"],
    "muted": ["#4878d0", "#ee854a", "#6acc64", "#d65f5f", "#956cb4", "#8c613c", "#dc7ec0",
              "#797979", "#d5bb67", "#82c6e2"],
    "deep": ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3",
             "#8c8c8c", "#ccb974", "#64b5cd"],
}
# Human names of things the figures label; units go into axis labels.
DIM_LABELS = {"frames": "frames", "channels": "channels", "features": "features",
              "frame": "frames", "channel": "channels", "feature": "features"}
STAGE_LABELS = {"baseline": "before AVA (baseline)", "ava": "after AVA"}


def apply(plots: dict) -> None:
    """Set matplotlib defaults from the config's `plots` section (a seaborn-like "ticks"
    look: white, light grid, thin lines, small ticks)."""
    size = float(plots["font_size"])
    matplotlib.rcdefaults()
    plt.rcParams.update({
        "font.size": size, "axes.labelsize": size, "axes.titlesize": size,
        "xtick.labelsize": size - 1, "ytick.labelsize": size - 1,
        "legend.fontsize": size - 1, "legend.title_fontsize": size - 1,
        "figure.titlesize": size + 1, "lines.linewidth": 1.2, "lines.markersize": 4,
        "axes.linewidth": 0.6, "axes.edgecolor": "0.15", "axes.spines.top": False,
        "axes.spines.right": False, "axes.grid": True, "grid.linewidth": 0.4,
        "grid.color": "0.85", "xtick.major.size": 2.5, "ytick.major.size": 2.5,
        "xtick.minor.size": 1.5, "ytick.minor.size": 1.5, "xtick.major.width": 0.6,
        "ytick.major.width": 0.6, "savefig.dpi": plots["dpi"], "figure.dpi": 100,
        "pdf.fonttype": 42 if plots["pdf_truetype"] else 3, "svg.hashsalt": "dance",
        "axes.prop_cycle": matplotlib.cycler(color=colors(plots, 10)),
    })


def colors(plots: dict, n: int) -> list[str]:
    """`n` colours of the palette of `plots` (qualitative palettes repeat after 10)."""
    name = plots["palette"]
    if name in PALETTES:
        base = PALETTES[name]
    elif name == "tab10":
        base = [matplotlib.colors.to_hex(c) for c in matplotlib.colormaps["tab10"].colors]
    else:                                           # a sequential map: n evenly spaced colours
        cmap = matplotlib.colormaps[name]
        return [matplotlib.colors.to_hex(cmap(x)) for x in
                ([0.5] if n == 1 else [0.9 * i / (n - 1) for i in range(n)])]
    return [base[i % len(base)] for i in range(n)]


def color_map(plots: dict, keys: Iterable[str]) -> dict[str, Any]:
    """Stable colour per key (in first-seen order), so a method has one colour everywhere."""
    keys = list(dict.fromkeys(keys))
    return dict(zip(keys, colors(plots, max(len(keys), 1)), strict=False))


def marker_map(keys: Iterable[str]) -> dict[str, str]:
    keys = list(dict.fromkeys(keys))
    return {k: MARKERS[i % len(MARKERS)] for i, k in enumerate(keys)}


def figure(plots: dict, nrows: int = 1, ncols: int = 1, wide: bool = False,
           height: float | None = None, **kw: Any) -> tuple[plt.Figure, Any]:
    """A constrained-layout figure one column (or `wide`: two columns) wide."""
    width = plots["column_width"] * (WIDE if wide else 1.0)
    height = height if height is not None else width * 0.72 * (nrows / max(ncols, 1)) ** 0.5
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), layout="constrained",
                             squeeze=False, **kw)
    return fig, axes


def legend_below(fig: plt.Figure, handles: Sequence, labels: Sequence[str],
                 ncol: int | None = None, title: str | None = None) -> None:
    """One legend for the whole figure, outside and below the axes (it hides no data)."""
    if not handles:
        return
    ncol = ncol or min(len(labels), 3)
    fig.legend(handles, labels, loc="outside lower center", ncol=ncol, frameon=False,
               title=title, handlelength=1.8, columnspacing=1.0)


def savefig(fig: plt.Figure, path: Path, fmt: str, dpi: float) -> None:
    """The one way a figure file is written: without the creation date (PDF) or software
    stamp (PNG), so that identical runs write identical bytes."""
    meta = {"CreationDate": None} if fmt == "pdf" else {"Software": None}
    fig.savefig(path, format=fmt, dpi=dpi, metadata=meta)


def save(fig: plt.Figure, plots: dict, paths: Paths, name: str,
         data: pd.DataFrame | Sequence[Mapping]) -> list[Path]:
    """Write `fig` as ``figures_dir/name.{png,pdf}`` (at ``plots.dpi``) and its data as
    ``name.csv``, the three renamed into place together (:func:`dance.io.atomic_paths`);
    close the figure."""
    out = [paths.figure(name, ext) for ext in (*FORMATS, "csv")]
    rows = data.to_dict("records") if isinstance(data, pd.DataFrame) else list(data)
    columns = list(data.columns) if isinstance(data, pd.DataFrame) else None
    with atomic_paths(out) as tmps:
        for ext, tmp in zip(FORMATS, tmps, strict=False):
            savefig(fig, tmp, ext, plots["dpi"])
            fig.set_layout_engine("none")    # laid out once (in figure fractions): reuse it
        plt.close(fig)
        dump_csv(tmps[-1], [_plain(r) for r in rows], columns)
    return out


def _plain(row: Mapping) -> dict:
    """numpy scalars and NaN as plain CSV cells (NaN → empty)."""
    out = {}
    for k, v in row.items():
        if hasattr(v, "item"):
            v = v.item()
        if isinstance(v, float) and v != v:
            v = None
        out[k] = v
    return out


def unavailable(plots: dict, paths: Paths, name: str, title: str, reason: str) -> list[Path]:
    """The figure when its input does not exist yet: a panel that says so and why (and a
    one-row CSV with ``status = not available``), instead of a crash or an invented plot."""
    apply(plots)
    fig, axes = figure(plots, height=plots["column_width"] * 0.45)
    ax = axes[0, 0]
    ax.set_axis_off()
    ax.text(0.5, 0.62, title, ha="center", va="center", weight="bold", transform=ax.transAxes)
    ax.text(0.5, 0.32, "not available yet:\n" + reason, ha="center", va="center",
            transform=ax.transAxes, wrap=True, fontsize=plots["font_size"] - 1)
    return save(fig, plots, paths, name, [{"figure": name, "status": "not available",
                                  "reason": reason}])


def log_axis(ax: plt.Axes, axis: str = "y") -> None:
    """Log scale with decade ticks only (minor ticks cost seconds of tick layout)."""
    from matplotlib.ticker import LogLocator, NullLocator

    getattr(ax, f"set_{axis}scale")("log")
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(LogLocator(base=10, numticks=6))
    target.set_minor_locator(NullLocator())


def panel_label(ax: plt.Axes, text: str) -> None:
    """A short bold panel title at the top left (e.g. the model name)."""
    ax.set_title(text, loc="left", weight="bold")
