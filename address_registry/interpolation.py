"""Where a house number the registry lacks should be on its road, and how sure that is.

Pure functions over plain data (metres along the road's axis, see `numbering.road_axis`).

Per road, the *anchors* are its plain house numbers with a point: (number, m along the axis, signed
offset from the axis, real). Real anchors (source osm / import / manual) are the frame as soon as the
road has one; generated numbers (the odd / even rule) are used only on a road with no real number.
From the frame the road learns:

- its *direction and rate*: metres per number, the Theil–Sen slope (median of pairwise slopes) of m
  against the number — negative when the numbers grow towards the axis's start; a road with one
  anchor takes the median slope of the roads that have two or more (`global_slope`);
- the *side* of each parity: the sign of the offsets of that parity's anchors (most of them), else the
  opposite of the other parity's side, else the rule's (odd left);
- the usual distance of its buildings from the axis (median |offset|).

A number is then placed (`estimate`):

1. between the nearest anchors below and above it — same parity, or both parities when that bracket
   is shorter on the ground — linearly in m and offset (`interpolated`, evidence: the gap in metres);
2. else from the nearest anchor by the road's rate, if that lands at most `EXTRAPOLATE_MAX_M` away
   and on the road (`extrapolated`, evidence: that distance);
3. else at the predicted place clamped to the road, as a stretch of road (`road_stretch`, evidence:
   the distance from the nearest anchor, or from the start on a road without anchors).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

EXTRAPOLATE_MAX_M = 150.0
SINGLE_ANCHOR_SPACING_M = 200.0
DEFAULT_OFFSET_M = 20.0
# an anchor farther than this from the axis lies beside a part of the road the axis does not cover
OFF_AXIS_M = 80.0
# metres per number when nothing better is known (central Shanghai: ~ the median over roads with anchors)
DEFAULT_SLOPE_M = 4.0


@dataclass(slots=True, frozen=True)
class Anchor:
    """A known plain house number on a road: its number, place along the axis, offset, provenance."""

    number: int
    m: float
    offset: float
    real: bool
    code: str
    x: float = 0.0
    y: float = 0.0


@dataclass(slots=True)
class RoadNumbering:
    """What a road's anchors say about its numbering (see the module docstring)."""

    length: float
    anchors: list[Anchor] = field(default_factory=list)
    slope: float = DEFAULT_SLOPE_M
    slope_learned: bool = False
    side: dict[int, float] = field(default_factory=lambda: {1: 1.0, 0: -1.0})
    offset: float = DEFAULT_OFFSET_M
    real: bool = False
    # median distance between neighbouring anchors (by number) along the road; None below two anchors
    spacing: float | None = None


@dataclass(slots=True)
class Estimate:
    """A number's estimated place: m along the axis and offset, how it was found (`kind`), the evidence
    distance in metres the radius grows with, and the anchors used (numbers)."""

    m: float
    offset: float
    kind: str
    evidence_m: float
    anchors: tuple[int, ...] = ()
    # the point in metres when found from the anchors' own points (between two of them, or near one
    # that lies off the axis); None: at (m, offset) on the axis
    xy: tuple[float, float] | None = None


def theil_sen(points: list[tuple[int, float]]) -> float | None:
    """Median of the pairwise slopes (metres per number) of (number, m) points; None below two numbers."""
    slopes = []
    for i in range(len(points)):
        for j in range(i + 1, len(points)):
            dn = points[j][0] - points[i][0]
            if dn:
                slopes.append((points[j][1] - points[i][1]) / dn)
    return statistics.median(slopes) if slopes else None


def fit_road(length: float, anchors: list[Anchor], global_slope: float = DEFAULT_SLOPE_M) -> RoadNumbering:
    """The numbering of one road from its anchors (real ones first; generated only on a road without)."""
    real = [a for a in anchors if a.real]
    frame = real if real else list(anchors)
    out = RoadNumbering(length=length, anchors=sorted(frame, key=lambda a: (a.number, a.m)), real=bool(real))
    slope = theil_sen([(a.number, a.m) for a in frame if abs(a.offset) <= OFF_AXIS_M])
    if slope is not None and slope != 0.0:
        out.slope, out.slope_learned = slope, True
    else:
        out.slope = global_slope
    signs: dict[int, float] = {}
    for parity in (0, 1):
        offs = [a.offset for a in frame if a.number % 2 == parity and a.offset != 0.0]
        if offs:
            pos = sum(1 for o in offs if o > 0)
            signs[parity] = 1.0 if pos * 2 >= len(offs) else -1.0
    for parity in (0, 1):
        if parity not in signs:
            signs[parity] = -signs[1 - parity] if (1 - parity) in signs else (1.0 if parity else -1.0)
    out.side = signs
    ordered = sorted(frame, key=lambda a: a.number)
    gaps = [math.hypot(b.x - a.x, b.y - a.y) for a, b in zip(ordered, ordered[1:], strict=False)]
    out.spacing = statistics.median(gaps) if gaps else None
    near_axis = [abs(a.offset) for a in frame if abs(a.offset) <= OFF_AXIS_M]
    if near_axis:
        out.offset = statistics.median(near_axis)
    return out


def _bracket(anchors: list[Anchor], number: int) -> tuple[Anchor, Anchor] | None:
    lower = upper = None
    for a in anchors:
        if a.number < number and (lower is None or a.number > lower.number):
            lower = a
        elif a.number > number and (upper is None or a.number < upper.number):
            upper = a
    return (lower, upper) if lower is not None and upper is not None else None


def estimate(road: RoadNumbering, number: int) -> Estimate:
    """Where ``number`` should be on ``road`` (see the module docstring)."""
    parity = number % 2
    same = [a for a in road.anchors if a.number % 2 == parity]
    side_off = road.side[parity] * road.offset
    best: tuple[float, Estimate] | None = None
    for pool, same_side in ((same, True), (road.anchors, False)):
        br = _bracket(pool, number)
        if br is None:
            continue
        lo, hi = br
        t = (number - lo.number) / (hi.number - lo.number)
        gap = math.hypot(hi.x - lo.x, hi.y - lo.y)
        m = lo.m + t * (hi.m - lo.m)
        if same_side:
            # between the two anchors' own points (robust to an axis that covers only part of the road)
            xy: tuple[float, float] | None = (lo.x + t * (hi.x - lo.x), lo.y + t * (hi.y - lo.y))
            evidence = gap
        else:
            # anchors of both sides: at their place along the road, on the number's own side
            xy, evidence = None, gap + 2 * road.offset
        if best is None or evidence < best[0] * 0.5:
            best = (evidence, Estimate(m, side_off, "interpolated", evidence, (lo.number, hi.number), xy))
    if best is not None:
        return best[1]
    if road.anchors:
        near = min(road.anchors, key=lambda a: (abs(a.number - number), a.number % 2 != parity))
        step = road.slope * (number - near.number)
        dist = abs(step)
        # how far the estimate may stray: the way to the anchor plus half the road's usual anchor spacing
        spread = dist + 0.5 * min(road.spacing if road.spacing is not None else SINGLE_ANCHOR_SPACING_M, 400.0)
        if abs(near.offset) > OFF_AXIS_M:
            # the anchor lies off the part of the road the axis covers: stay near the anchor
            kind = "extrapolated" if dist <= EXTRAPOLATE_MAX_M else "road_stretch"
            return Estimate(near.m, near.offset, kind, spread, (near.number,), (near.x, near.y))
        m = near.m + step
        if dist <= EXTRAPOLATE_MAX_M and -20.0 <= m <= road.length + 20.0:
            return Estimate(m, side_off, "extrapolated", spread, (near.number,))
        clamped = min(max(m, 0.0), road.length)
        # beyond the road's end the place is somewhere on the road: never more than its length away
        return Estimate(clamped, 0.0, "road_stretch", min(spread, road.length), (near.number,))
    m = abs(road.slope) * number
    clamped = min(max(m, 0.0), road.length)
    return Estimate(clamped, 0.0, "road_stretch", min(max(m, 100.0), max(road.length, 100.0)), ())


def global_slope(roads: list[RoadNumbering]) -> float:
    """Median learned slope over roads whose real anchors gave one (the default for the others)."""
    slopes = [r.slope for r in roads if r.slope_learned and r.real]
    return statistics.median(slopes) if slopes else DEFAULT_SLOPE_M


def point_at(axis, m: float, offset: float) -> tuple[float, float]:
    """Metres (x, y) at ``m`` along ``axis`` moved ``offset`` to its left (negative: right)."""
    length = axis.length
    m = min(max(m, 0.0), length)
    p = axis.interpolate(m)
    a = axis.interpolate(max(m - 1.0, 0.0))
    b = axis.interpolate(min(m + 1.0, length))
    tx, ty = b.x - a.x, b.y - a.y
    norm = math.hypot(tx, ty) or 1.0
    return p.x - offset * ty / norm, p.y + offset * tx / norm
