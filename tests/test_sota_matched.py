"""The matched-accuracy rule (dance.sota.matched) on toy curves, expectations by hand."""

from __future__ import annotations

import numpy as np
import pytest

from dance.sota.matched import Point, matched_point, pareto

CLIPS = 1000


def point(name: str, correct: int, energy: float) -> Point:
    return Point(name, correct / CLIPS, energy, correct)


CURVE = [point("a", 800, 10.0), point("b", 840, 20.0), point("c", 860, 40.0),
         point("d", 830, 30.0)]          # d is dominated by b


def test_pareto_drops_dominated_points():
    assert [p.name for p in pareto(CURVE)] == ["a", "b", "c"]


def test_lowest_energy_eligible_point():
    # dense 850 of 1000, tolerance 0.01 -> floor 840 clips: b (20) and c (40) eligible
    m = matched_point(CURVE, 850, CLIPS, 0.01)
    assert (m.point, m.energy, m.interpolated) == ("b", 20.0, False)


def test_interpolation_on_the_pareto_segment():
    # dense 855 -> floor 0.845, between b (0.84, 20) and c (0.86, 40): 20 + 0.25*20 = 25
    m = matched_point(CURVE, 855, CLIPS, 0.01, interpolate=True)
    assert m.interpolated and m.point == "interp(b,c)"
    assert m.energy == pytest.approx(25.0) and m.top1 == pytest.approx(0.845)
    # without interpolation: only c is eligible
    assert matched_point(CURVE, 855, CLIPS, 0.01).energy == 40.0


def test_no_interpolation_beyond_the_sweep():
    # floor below every point: the cheapest point itself, nothing extrapolated
    m = matched_point(CURVE, 700, CLIPS, 0.01, interpolate=True)
    assert (m.point, m.energy) == ("a", 10.0)
    assert matched_point(CURVE, 950, CLIPS, 0.01, interpolate=True) is None


def test_eligibility_is_decided_on_counts_not_float_means():
    """Issue 23.4: 8 clips fewer of 800 is exactly 1 point and eligible, whatever its float32
    mean rounds to; 9 fewer is not, even with a top-1 that reads as if it were."""
    dense = 631
    exact = Point("exact", float(np.float32(623 / 800)), 1.0, 623)
    below = Point("below", dense / 800 - 0.01, 0.5, 622)   # a float that claims the floor
    m = matched_point([exact, below], dense, 800, 0.01)
    assert m is not None and m.point == "exact"
    assert matched_point([below], dense, 800, 0.01) is None
