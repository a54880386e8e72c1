"""Summary statistics of timings, torch-free so that log parsers and reports stay light."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def summarise(seconds: Sequence[float]) -> dict[str, float | int]:
    """{median, p25, p75, iqr, mean, n} of a list of durations (seconds; linear percentiles)."""
    a = np.asarray(seconds, dtype=np.float64)
    if a.size == 0:
        return {"median": float("nan"), "p25": float("nan"), "p75": float("nan"),
                "iqr": float("nan"), "mean": float("nan"), "n": 0}
    p25, median, p75 = (float(v) for v in np.percentile(a, [25, 50, 75]))
    return {"median": median, "p25": p25, "p75": p75, "iqr": p75 - p25,
            "mean": float(a.mean()), "n": int(a.size)}


def distribution(values: Sequence[float]) -> dict[str, float]:
    """{mean, p5, median, p95, min, max} of per-clip values (MACs, ratios, ...)."""
    a = np.asarray(values, dtype=np.float64)
    p5, p50, p95 = np.percentile(a, [5, 50, 95])
    return {"mean": float(a.mean()), "p5": float(p5), "median": float(p50),
            "p95": float(p95), "min": float(a.min()), "max": float(a.max())}
