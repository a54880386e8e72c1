"""The one table writer: CSV (raw numbers), Markdown and LaTeX (formatted), atomically.

The CSV keeps full precision and machine-friendly column names (what scripts and the
rebuild test read); Markdown and LaTeX show the same rows with headers that carry units
and values rounded for reading. Empty cells (NaN/None) print as an em dash, text cells
(e.g. "not measured") as they are.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from dance.io import atomic_paths, dump_csv, markdown_table
from dance.paths import Paths
from dance.report.data import nan_to_none

Formatter = Callable[[Any], str]


@dataclass(frozen=True)
class Column:
    key: str                         # CSV column (raw value)
    header: str                      # Markdown/LaTeX header, with the unit
    fmt: str | Formatter = "{}"      # format string or function for numbers
    display: bool = True             # False: in the CSV only (e.g. raw parts of a range)


def pct(value: float) -> str:
    """A fraction as a percentage with one decimal."""
    return f"{100 * value:.1f}"


def points(value: float) -> str:
    """Signed top-1 points."""
    return f"{value:+.1f}"


def times(value: float) -> str:
    return f"{value:.2f}×"


def millions(value: float) -> str:
    return f"{value / 1e6:.2f}"


def _cell(value: Any, fmt: str | Formatter) -> str:
    value = nan_to_none(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    return fmt(value) if callable(fmt) else fmt.format(value)


_LATEX_ESCAPES = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
                  "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "\\": r"\textbackslash{}", "×": r"$\times$", "—": "--", "≥": r"$\geq$",
                  "≤": r"$\leq$", "Δ": r"$\Delta$", "σ": r"$\sigma$", "±": r"$\pm$",
                  "–": "--", "τ": r"$\tau$"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def markdown(title: str, columns: Sequence[Column], cells: list[list[str]], note: str) -> str:
    text = f"**{title}**\n\n" + markdown_table((c.header for c in columns), cells)
    return text + (f"\n{note}\n" if note else "")


def latex(name: str, title: str, columns: Sequence[Column], cells: list[list[str]],
          note: str) -> str:
    """A booktabs table float (needs \\usepackage{booktabs})."""
    spec = "l" * len(columns)
    body = [" & ".join(latex_escape(c) for c in row) + r" \\" for row in cells]
    caption = latex_escape(title) + (" " + latex_escape(note) if note else "")
    return "\n".join([
        r"\begin{table}[t]", r"\centering", r"\small",
        rf"\caption{{{caption}}}", rf"\label{{tab:{name}}}",
        rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
        " & ".join(latex_escape(c.header) for c in columns) + r" \\", r"\midrule",
        *(body or [rf"\multicolumn{{{len(columns)}}}{{c}}{{(no rows)}} \\"]),
        r"\bottomrule", r"\end{tabular}", r"\end{table}", ""])


def write_table(paths: Paths, name: str, title: str, frame: pd.DataFrame,
                columns: Sequence[Column], note: str = "") -> list[Path]:
    """Write ``tables/<name>.{csv,md,tex}`` from `frame` (one row per table row), the three
    renamed into place together (:func:`dance.io.atomic_paths`)."""
    out = [paths.table(name, ext) for ext in ("csv", "md", "tex")]
    keys = [c.key for c in columns]
    records = frame.to_dict("records") if len(frame) else []
    shown = [c for c in columns if c.display]
    cells = [[_cell(r.get(c.key), c.fmt) for c in shown] for r in records]
    with atomic_paths(out) as (csv_tmp, md_tmp, tex_tmp):
        dump_csv(csv_tmp, [{k: nan_to_none(r.get(k)) for k in keys} for r in records], keys)
        md_tmp.write_text(markdown(title, shown, cells, note))
        tex_tmp.write_text(latex(name, title, shown, cells, note))
    return out


def write_unavailable(paths: Paths, name: str, title: str, columns: Sequence[Column],
                      reason: str) -> list[Path]:
    """The table when its input does not exist yet: no rows, and the reason in the note."""
    return write_table(paths, name, title, pd.DataFrame(columns=[c.key for c in columns]),
                       columns, note=f"Not available yet: {reason}")
