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
