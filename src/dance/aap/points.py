"""Which AAP controllers the workflow trains (no torch import: the report and the
Snakefile ask it at parse time)."""

from __future__ import annotations


def trained_points(cfg: dict) -> dict[str, list[int]]:
    """Variant → the operating points the workflow trains for it."""
    n = len(cfg["aap"]["points"])
    abl = [k for k in cfg["aap"]["ablation_points"] if k < n]
    return {"dance": list(range(n)), **{v: abl for v in cfg["aap"]["ablations"]}}
