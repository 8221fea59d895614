"""House-numbering rule for buildings without an address tag, and the road axis it runs along.

The rule (documented in docs/address-code.md, "Generated house numbers"):

1. A road is the set of named OSM ways with one name. Its *axis* is the longest line obtained by
   merging those ways (so one carriageway of a dual carriageway, never a side branch).
2. The axis runs from the road's *start*: the eastern end for a road that runs mostly east–west, the
   southern end for a road that runs mostly north–south (numbers grow away from the Huangpu river,
   as they commonly do in central Shanghai).
3. A building is numbered on its nearest named road (within `MAX_ROAD_DISTANCE_M`). Its position
   along the road is the distance `m` from the start of its centroid's projection on the axis; its
   side is left or right of the axis looking from the start.
4. Left side → odd numbers, right side → even: ``n = 2 * floor(m / NUMBER_SLOT_M) + 1`` on the left,
   ``+ 2`` on the right. A number already used on that road (by a real OSM address or an earlier
   building) moves up to the next free number of the same parity. Buildings are taken in order of `m`.

The same axis is what the geocoder interpolates along, so generated and real numbers share one frame.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import shapely
from shapely.geometry import LineString, MultiLineString, Point

NUMBER_SLOT_M = 20.0
MAX_ROAD_DISTANCE_M = 250.0


@dataclass(frozen=True, slots=True)
class LocalProjection:
    """Equirectangular metres around an origin: exact enough (< 0.1 %) over a city district."""

    lon0: float
    lat0: float

    @property
    def kx(self) -> float:
        """Metres per degree of longitude at ``lat0``."""
        return 111_320.0 * math.cos(math.radians(self.lat0))

    @property
    def ky(self) -> float:
        """Metres per degree of latitude."""
        return 110_574.0

    def forward(self, lon, lat):
        """lon/lat → local metres."""
        return (np.asarray(lon) - self.lon0) * self.kx, (np.asarray(lat) - self.lat0) * self.ky

    def inverse(self, x, y):
        """Local metres → lon/lat."""
        return np.asarray(x) / self.kx + self.lon0, np.asarray(y) / self.ky + self.lat0

    def geom_to_metres(self, geom):
        """A geometry in lon/lat → local metres."""
        return shapely.transform(geom, lambda c: np.column_stack(self.forward(c[:, 0], c[:, 1])))

    def geom_to_lonlat(self, geom):
        """A geometry in local metres → lon/lat."""
        return shapely.transform(geom, lambda c: np.column_stack(self.inverse(c[:, 0], c[:, 1])))


SHANGHAI = LocalProjection(121.49, 31.23)


def road_axis(lines_m: Sequence[LineString]) -> LineString | None:
    """The oriented axis of a road from its ways (in metres): rules 1 and 2 above."""
    parts: list[LineString] = []
    for g in lines_m:
        if g is None or g.is_empty:
            continue
        if isinstance(g, MultiLineString):
            parts.extend(g.geoms)
        else:
            parts.append(g)
    if not parts:
        return None
    merged = shapely.line_merge(MultiLineString(parts))
    pieces = list(merged.geoms) if hasattr(merged, "geoms") else [merged]
    axis = max(pieces, key=lambda g: g.length)
    if axis.length == 0:
        return None
    (x0, y0), (x1, y1) = axis.coords[0], axis.coords[-1]
    dx, dy = x1 - x0, y1 - y0
    if abs(dx) >= abs(dy):
        reverse = dx > 0  # east–west road: start at the eastern end
    else:
        reverse = dy < 0  # north–south road: start at the southern end
    return shapely.reverse(axis) if reverse else axis


def position_on_axis(axis: LineString, point: Point) -> tuple[float, bool]:
    """(m, left): distance along the axis of the point's projection, and whether it lies on the left."""
    m = axis.project(point)
    length = axis.length
    a = axis.interpolate(max(m - 1.0, 0.0))
    b = axis.interpolate(min(m + 1.0, length))
    cross = (b.x - a.x) * (point.y - a.y) - (b.y - a.y) * (point.x - a.x)
    return m, cross > 0


def first_number(m: float, left: bool) -> int:
    """The number of the slot at ``m`` metres along the axis (odd on the left, even on the right)."""
    return 2 * int(m // NUMBER_SLOT_M) + (1 if left else 2)


K = TypeVar("K")


def assign_numbers(items: Iterable[tuple[K, float, bool]], taken: set[int]) -> dict[K, int]:
    """Rule 4: numbers for (key, m, left) items on one road, avoiding (and extending) `taken`."""
    out: dict[K, int] = {}
    for key, m, left in sorted(items, key=lambda it: (it[1], not it[2], str(it[0]))):
        n = first_number(m, left)
        while n in taken:
            n += 2
        taken.add(n)
        out[key] = n
    return out


def interpolate_on_axis(axis: LineString, known: Sequence[tuple[int, float, float]], number: int):
    """Metres (x, y) of house `number` from known (number, m, offset) on the same side, or None.

    Needs a known number below and above; the point is at the linearly interpolated distance along
    the axis, moved sideways by the interpolated offset of the two neighbours (their distance from
    the axis, signed: + left).
    """
    lower = upper = None
    for item in known:
        n = item[0]
        if n < number and (lower is None or n > lower[0]):
            lower = item
        elif n > number and (upper is None or n < upper[0]):
            upper = item
    if lower is None or upper is None:
        return None
    t = (number - lower[0]) / (upper[0] - lower[0])
    m = lower[1] + t * (upper[1] - lower[1])
    off = lower[2] + t * (upper[2] - lower[2])
    length = axis.length
    p = axis.interpolate(m)
    a = axis.interpolate(max(m - 1.0, 0.0))
    b = axis.interpolate(min(m + 1.0, length))
    tx, ty = b.x - a.x, b.y - a.y
    norm = math.hypot(tx, ty) or 1.0
    # left normal of the direction of travel
    nx, ny = -ty / norm, tx / norm
    return p.x + off * nx, p.y + off * ny


def signed_offset(axis: LineString, point: Point) -> float:
    """Distance of the point from the axis, + on the left, − on the right."""
    m, left = position_on_axis(axis, point)
    d = axis.interpolate(m).distance(point)
    return d if left else -d
