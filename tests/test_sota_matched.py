"""The matched-accuracy rule (dance.sota.matched) on toy curves, expectations by hand."""

from __future__ import annotations

import pytest

from dance.sota.matched import Point, matched_point, pareto

CURVE = [Point("a", 0.80, 10.0), Point("b", 0.84, 20.0), Point("c", 0.86, 40.0),
         Point("d", 0.83, 30.0)]          # d is dominated by b


def test_pareto_drops_dominated_points():
    assert [p.name for p in pareto(CURVE)] == ["a", "b", "c"]


def test_lowest_energy_eligible_point():
    # dense 0.85, tolerance 0.01 -> floor 0.84: b (20) and c (40) eligible
    m = matched_point(CURVE, 0.85, 0.01)
    assert (m.point, m.energy, m.interpolated) == ("b", 20.0, False)


def test_interpolation_on_the_pareto_segment():
    # dense 0.855 -> floor 0.845, between b (0.84, 20) and c (0.86, 40): 20 + 0.25*20 = 25
    m = matched_point(CURVE, 0.855, 0.01, interpolate=True)
    assert m.interpolated and m.point == "interp(b,c)"
    assert m.energy == pytest.approx(25.0) and m.top1 == pytest.approx(0.845)
    # without interpolation: only c is eligible
    assert matched_point(CURVE, 0.855, 0.01).energy == 40.0


def test_no_interpolation_beyond_the_sweep():
    # floor below every point: the cheapest point itself, nothing extrapolated
    m = matched_point(CURVE, 0.70, 0.01, interpolate=True)
    assert (m.point, m.energy) == ("a", 10.0)
    assert matched_point(CURVE, 0.95, 0.01, interpolate=True) is None
