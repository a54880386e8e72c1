"""Top-1 as integer counts of correct clips, so that an accuracy verdict never depends on
float rounding (issue 23.4).

A top-1 stored as a float32 mean (``0.78999996``) turns an exact −8 of 800 clips (−1 point)
into −0.99999905 points, which passes a "≥ −1 point" rule by chance and could as well fail
it. Every record therefore keeps ``correct`` and ``clips``; deltas are differences of counts,
and a tolerance is compared in exact rational arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from typing import Any


def top1(correct: int, clips: int) -> float:
    """The top-1 fraction of `correct` out of `clips` (NaN for no clips)."""
    return correct / clips if clips else float("nan")


def correct_of(record: Mapping[str, Any], top1_key: str = "top1",
               correct_key: str = "correct") -> int:
    """Number of correct clips of an evaluation record or summary row: its `correct_key`, or
    ``round(top1 · clips)`` for a record written before counts were stored (exact: a float32
    mean over fewer than 10⁶ clips is within 10⁻⁶ of a multiple of 1/clips)."""
    value = record.get(correct_key)
    if value is not None and not (isinstance(value, float) and math.isnan(value)):
        return int(value)
    clips = int(record["clips"])
    return round(float(record[top1_key]) * clips)


def delta_points(correct: int, reference_correct: int, clips: int) -> Fraction:
    """Top-1 change in points (100 · Δcorrect / clips), exact; negative = fewer correct."""
    return Fraction(100 * (correct - reference_correct), clips)


def within_points(correct: int, reference_correct: int, clips: int,
                  tolerance_points: float) -> bool:
    """Whether the top-1 change is at least −`tolerance_points`, decided on integers (the
    tolerance as written in the config: 1.0 means exactly 1 point)."""
    tolerance = Fraction(str(tolerance_points))
    return delta_points(correct, reference_correct, clips) >= -tolerance


def describe_delta(correct: int, reference_correct: int, clips: int) -> str:
    """``−8 correct clips of 800 (−1.00 pt)``: the count a verdict is taken on, in points."""
    diff = correct - reference_correct
    sign = "+" if diff > 0 else ("−" if diff < 0 else "±")
    return (f"{sign}{abs(diff)} correct clips of {clips} "
            f"({sign}{abs(float(delta_points(correct, reference_correct, clips))):.2f} pt)")


def within_fraction(correct: int, reference_correct: int, clips: int,
                    tolerance: float) -> bool:
    """:func:`within_points` with the tolerance as a top-1 fraction (0.01 = 1 point)."""
    return Fraction(correct - reference_correct, clips) >= -Fraction(str(tolerance))
