"""The matched-accuracy rule of the state-of-the-art comparison (docs/method.md "SOTA
comparison").

For one model and one energy preset, each method is a swept curve of operating points
(top-1, energy per clip). A point is *eligible* when its top-1 is within `tolerance` (1
point = 0.01) of the dense baseline: top1 ≥ top1_dense − tolerance, decided on the integer
counts of correct test clips (:mod:`dance.measure.accuracy`), never on float means. A method's
matched
energy is the lowest energy of its eligible points. With `interpolate`, the method's Pareto
front (points not beaten in both top-1 and energy by another point) is read as a piecewise
linear curve, and where it crosses the accuracy floor between an eligible point and a
cheaper ineligible one, the energy at the floor is taken by linear interpolation of energy
in top-1 — only ever on a segment between two measured points, never beyond the sweep.

DANCE's energy efficiency (1 / energy per clip) divided by that of the best other method at
its matched point is the comparison's ratio: E_other / E_dance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dance.measure import accuracy


@dataclass(frozen=True)
class Point:
    name: str
    top1: float
    energy: float
    correct: int        # correct test clips (top1 = correct / clips)


@dataclass(frozen=True)
class Matched:
    point: str          # the operating point, or "interp(<cheaper>,<eligible>)"
    energy: float
    top1: float
    interpolated: bool


def pareto(points: Sequence[Point]) -> list[Point]:
    """Points no other point beats (≥ top-1 and ≤ energy, one strictly), by energy."""
    front = []
    for p in points:
        beaten = any((q.top1 >= p.top1 and q.energy <= p.energy)
                     and (q.top1 > p.top1 or q.energy < p.energy) for q in points)
        if not beaten:
            front.append(p)
    # duplicates (same top-1 and energy) keep the first name only
    seen, out = set(), []
    for p in sorted(front, key=lambda p: (p.energy, -p.top1, p.name)):
        if (p.top1, p.energy) not in seen:
            seen.add((p.top1, p.energy))
            out.append(p)
    return out


def matched_point(points: Sequence[Point], correct_dense: int, clips: int,
                  tolerance: float = 0.01, interpolate: bool = False) -> Matched | None:
    """The method's lowest-energy point within `tolerance` of dense (module docstring), or
    None when no point is eligible; every point counts its correct clips of the same
    `clips` test clips as the dense network's `correct_dense`."""
    def ok(p: Point) -> bool:
        return accuracy.within_fraction(p.correct, correct_dense, clips, tolerance)

    target = accuracy.top1(correct_dense, clips) - tolerance
    eligible = [p for p in points if ok(p)]
    if not eligible:
        return None
    best = min(eligible, key=lambda p: (p.energy, -p.top1, p.name))
    result = Matched(best.name, best.energy, best.top1, False)
    if not interpolate:
        return result
    front = pareto(points)            # by increasing energy and increasing top-1
    for lo, hi in zip(front, front[1:], strict=False):
        if not ok(lo) and ok(hi):
            share = (target - lo.top1) / (hi.top1 - lo.top1)
            energy = lo.energy + share * (hi.energy - lo.energy)
            if energy < result.energy:
                result = Matched(f"interp({lo.name},{hi.name})", energy, target, True)
            break
    return result


def efficiency_ratio(dance_energy: float, other_energy: float) -> float:
    """(1 / E_dance) / (1 / E_other)."""
    return other_energy / dance_energy
