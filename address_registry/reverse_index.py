"""Reverse geocoding answered from memory (issue 14: /reverse p99 < 10 ms under 8 clients): the pure core.

The five parts `store.reverse_parts` reads in one SQL statement — the footprint's address, the nearest address
points, the district / township / community, the grid and the compound at a point — answered from indices
held by the API process, with the same answers (`tests/address_registry/test_reverse_in_memory.py` compares
both on the demo). Plain arrays and shapely geometries in, `ReverseParts` out; no I/O here: the loading and
keeping current is `address_registry.reverse_cache`.

How each part matches the SQL:

- **nearest**: the SQL takes the ``max(k·8, 16)`` nearest points by PostGIS's KNN (``geom <-> pt``: planar
  distance in degrees), then orders them by their spheroid distance rounded to 2 decimals (as ``numeric``),
  a house number before a building, then code. Here a scipy ``cKDTree`` over the raw lon/lat degrees gives the
  same candidates; their distance is PostGIS's: the geodesic on the WGS84 spheroid (PROJ's ``geod_inverse``
  through pyproj, the same routine PostGIS calls), from points converted to radians and back as PostGIS
  does, rounded to 1e-8 m (PostGIS's "nanometre" rounding); the order key rounds the float as PostgreSQL's
  ``float8 → numeric`` cast (15 significant digits) and ``round(…, 2)`` (half away from zero) do.
- **footprint**: buildings within 0.0002° (``ST_DWithin`` on geometry: planar, shapely's ``dwithin``), their
  geography distance to the point: 0 inside; else the closest point of the rings on the sphere (as PostGIS's
  ``edge_distance_to_point``: the point projected on each edge's great circle, or the nearer end) and the
  spheroid distance to it. Order: that distance rounded to 1 decimal, level, code. ``extent_m`` is
  ``ST_MaxDistance`` in UTM 51N (EPSG:32651): the farthest footprint vertex from the address point.
- **admin / grid / compound**: shapely 2 ``STRtree.query(point, predicate="intersects")`` (``ST_Intersects``),
  the same filters (an admin unit's ``valid_to`` against the time of the question) and orderings (admin by
  code length then code, grids by code, the compound with the smallest planar area, then code).

Registry changes arrive as deltas (`PointIndex.apply`): removed and changed points are masked in the tree,
new ones go to a small overlay searched by brute force, and the tree is rebuilt when the overlay grows.
Every published state is an immutable snapshot swapped in one assignment, so a question answered on another
thread meanwhile sees either the old state or the new one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import shapely
from pyproj import Geod, Transformer
from scipy.spatial import cKDTree
from shapely import STRtree

from address_registry.records import AddressRecord
from address_registry.store.reverse import AddressHit, ReverseParts

#: the levels reverse geocoding answers with (units, floors and rooms stand on their building's point)
POINT_LEVELS = ("house_number", "building")
_RANK = {"house_number": 0, "building": 1}
#: ``ST_DWithin(b.geom, pt, 0.0002)`` of the SQL's footprint branch (degrees, planar)
FOOTPRINT_SEARCH_DEG = 0.0002
# WGS84 as PostGIS initialises it (spheroid_init from a and b: f = (a - b) / a)
_A = 6378137.0
_B = _A * (1.0 - 1.0 / 298.257223563)
_GEOD = Geod(a=_A, f=(_A - _B) / _A)
_UTM51 = Transformer.from_crs("EPSG:4326", "EPSG:32651", always_xy=True)
# metres per degree of longitude at the equator, less 1 %: × cos(latitude) a lower bound in any direction
_M_PER_DEG_MIN = 111_320.0 * 0.99
# overlay (points added since the tree was built) above this many, or this share of the tree: rebuild
OVERLAY_MAX = 2_000
OVERLAY_SHARE = 0.02


# -- PostGIS's geography distance ----------------------------------------------------------------------
def _rad(deg: Any) -> Any:
    return np.pi * deg / 180.0  # deg2rad as liblwgeom writes it: M_PI * d / 180.0


def _deg(rad: Any) -> Any:
    return rad * 180.0 / np.pi  # spheroid_distance's lat * 180.0 / M_PI


def _nanometres(d: Any) -> Any:
    """PostGIS's ``round(distance * 1e8) / 1e8`` (C ``round``: half away from zero; distances are ≥ 0)."""
    return np.floor(d * 1e8 + 0.5) / 1e8


def geodesic_m(lon: float, lat: float, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    """Metres from (lon, lat) to each point, as PostGIS's ``ST_Distance(a::geography, b::geography)``."""
    n = len(lons)
    if n == 0:
        return np.zeros(0)
    p_lon, p_lat = math.pi * lon / 180.0, math.pi * lat / 180.0
    r_lon, r_lat = _rad(np.asarray(lons, float)), _rad(np.asarray(lats, float))
    _f, _b, dist = _GEOD.inv(np.full(n, p_lon * 180.0 / math.pi), np.full(n, p_lat * 180.0 / math.pi),
                             _deg(r_lon), _deg(r_lat))
    # geographic_point_equals: the same point within 1e-12 radians is 0
    same = (np.abs(r_lon - p_lon) <= 1e-12) & (np.abs(r_lat - p_lat) <= 1e-12)
    return _nanometres(np.where(same, 0.0, dist))


def _cart(lon_r: Any, lat_r: Any) -> Any:
    c = np.cos(lat_r)
    return np.stack([c * np.cos(lon_r), c * np.sin(lon_r), np.sin(lat_r)], axis=-1)


def _sphere_angle(lon1: Any, lat1: Any, lon2: Any, lat2: Any) -> Any:
    """liblwgeom's ``sphere_distance`` (radians on the unit sphere)."""
    d_lon = lon2 - lon1
    cos_d = np.cos(d_lon)
    a1 = (np.cos(lat2) * np.sin(d_lon)) ** 2
    a2 = (np.cos(lat1) * np.sin(lat2) - np.sin(lat1) * np.cos(lat2) * cos_d) ** 2
    return np.arctan2(np.sqrt(a1 + a2), np.sin(lat1) * np.sin(lat2) + np.cos(lat1) * np.cos(lat2) * cos_d)


def _sphere_angle_1(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """`_sphere_angle` of one pair, with the C library's trigonometry (as liblwgeom's)."""
    d_lon = lon2 - lon1
    cos_d = math.cos(d_lon)
    c1, s1, c2, s2 = math.cos(lat1), math.sin(lat1), math.cos(lat2), math.sin(lat2)
    a1 = (c2 * math.sin(d_lon)) ** 2
    a2 = (c1 * s2 - s1 * c2 * cos_d) ** 2
    return math.atan2(math.sqrt(a1 + a2), s1 * s2 + c1 * c2 * cos_d)


def _closest_on_edge(p: tuple[float, float, float], p_lon: float, p_lat: float, s_lon: float, s_lat: float,
                     e_lon: float, e_lat: float) -> tuple[float, float, float]:
    """(angle, lon, lat) of the point of the edge s→e nearest to p on the sphere (radians): liblwgeom's
    ``edge_distance_to_point`` — p projected on the edge's great circle when that falls on the edge, else
    the nearer end."""
    best = (_sphere_angle_1(p_lon, p_lat, s_lon, s_lat), s_lon, s_lat)
    d3 = _sphere_angle_1(p_lon, p_lat, e_lon, e_lat)
    if d3 < best[0]:
        best = (d3, e_lon, e_lat)
    # robust_cross_product(start, end): the normal of the edge's great circle
    lon_qpp = (e_lon + s_lon) / -2.0
    lon_qmp = (e_lon - s_lon) / 2.0
    s_minus, s_plus = math.sin(s_lat - e_lat), math.sin(s_lat + e_lat)
    sin_qpp, cos_qpp, sin_qmp, cos_qmp = math.sin(lon_qpp), math.cos(lon_qpp), math.sin(lon_qmp), math.cos(lon_qmp)
    nx = s_minus * sin_qpp * cos_qmp - s_plus * cos_qpp * sin_qmp
    ny = s_minus * cos_qpp * cos_qmp + s_plus * sin_qpp * sin_qmp
    nz = math.cos(s_lat) * math.cos(e_lat) * math.sin(e_lon - s_lon)
    norm = math.sqrt(nx * nx + ny * ny + nz * nz)
    if norm == 0.0:
        return best
    nx, ny, nz = nx / norm, ny / norm, nz / norm
    dot = p[0] * nx + p[1] * ny + p[2] * nz
    kx, ky, kz = p[0] - nx * dot, p[1] - ny * dot, p[2] - nz * dot
    kn = math.sqrt(kx * kx + ky * ky + kz * kz)
    if kn == 0.0:
        return best
    kx, ky, kz = kx / kn, ky / kn, kz / kn
    # on the edge: k lies between its ends (s × k and k × e both along the normal)
    cs, ce = math.cos(s_lat), math.cos(e_lat)
    ax, ay, az = cs * math.cos(s_lon), cs * math.sin(s_lon), math.sin(s_lat)
    bx, by, bz = ce * math.cos(e_lon), ce * math.sin(e_lon), math.sin(e_lat)
    side_a = (ay * kz - az * ky) * nx + (az * kx - ax * kz) * ny + (ax * ky - ay * kx) * nz
    side_b = (ky * bz - kz * by) * nx + (kz * bx - kx * bz) * ny + (kx * by - ky * bx) * nz
    if side_a >= 0 and side_b >= 0:
        k_lon, k_lat = math.atan2(ky, kx), math.asin(max(-1.0, min(1.0, kz)))
        d1 = _sphere_angle_1(p_lon, p_lat, k_lon, k_lat)
        if d1 <= best[0]:
            best = (d1, k_lon, k_lat)
    return best


def polygon_distance_m(lon: float, lat: float, geom: Any) -> float:
    """Metres from (lon, lat) to a (multi)polygon, as PostGIS's geography ``ST_Distance``: 0 when the polygon
    holds the point, else the spheroid distance to the closest point of its rings on the sphere."""
    if shapely.intersects_xy(geom, lon, lat):
        return 0.0
    p_lon, p_lat = math.pi * lon / 180.0, math.pi * lat / 180.0
    cp = math.cos(p_lat)
    p = (cp * math.cos(p_lon), cp * math.sin(p_lon), math.sin(p_lat))
    best = (math.inf, p_lon, p_lat)
    for part in getattr(geom, "geoms", [geom]):
        for ring in (part.exterior, *part.interiors):
            pts = [(math.pi * x / 180.0, math.pi * y / 180.0) for x, y in ring.coords]
            for (s_lon, s_lat), (e_lon, e_lat) in zip(pts, pts[1:], strict=False):
                got = _closest_on_edge(p, p_lon, p_lat, s_lon, s_lat, e_lon, e_lat)
                if got[0] < best[0]:
                    best = got
    _d, c_lon, c_lat = best
    if abs(c_lat - p_lat) <= 1e-12 and abs(c_lon - p_lon) <= 1e-12:
        return 0.0
    _f, _b, dist = _GEOD.inv(p_lon * 180.0 / math.pi, p_lat * 180.0 / math.pi, c_lon * 180.0 / math.pi,
                             c_lat * 180.0 / math.pi)
    return math.floor(float(dist) * 1e8 + 0.5) / 1e8


def numeric_round(value: float, quantum: Decimal) -> Decimal:
    """``round(value::numeric, n)`` in PostgreSQL: the float as 15 significant digits, half away from zero."""
    return Decimal(f"{value:.15g}").quantize(quantum, rounding=ROUND_HALF_UP)


def rounded_key(value: float, places: int) -> int:
    """``round(value::numeric, places)`` as an integer count of ``10**-places`` (an order key): by float
    arithmetic, or through `numeric_round` when the value is within 1e-6 of a half (where they could part)."""
    x = value * 10.0**places
    frac = x - math.floor(x)
    if abs(frac - 0.5) > 1e-6:
        return math.floor(x + 0.5)
    return int(numeric_round(value, Decimal(1).scaleb(-places)).scaleb(places))


def extent_m(lon: float, lat: float, geom: Any) -> float:
    """``ST_MaxDistance(ST_Transform(point, 32651), ST_Transform(footprint, 32651))``: metres from the address
    point to the footprint's farthest vertex, in UTM 51N."""
    xy = shapely.get_coordinates(geom)
    xs, ys = _UTM51.transform(xy[:, 0], xy[:, 1])
    px, py = _UTM51.transform(lon, lat)
    return float(np.max(np.hypot(np.asarray(xs) - px, np.asarray(ys) - py)))


# -- the address points ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Points:
    """One published state of the address points: a tree over ``base`` (minus the dead), and an overlay."""

    base: list[AddressRecord]
    tree: cKDTree | None
    alive: np.ndarray  # per base point
    dead: int
    overlay: tuple[AddressRecord, ...]
    overlay_xy: np.ndarray  # (n, 2)
    where: dict[str, tuple[bool, int]]  # code → (in base, index)


def _is_point(rec: AddressRecord) -> bool:
    return rec.status == "active" and rec.level in _RANK and rec.lon is not None and rec.lat is not None


def _points(records: Iterable[AddressRecord]) -> _Points:
    base = sorted((r for r in records if _is_point(r)), key=lambda r: r.code)
    xy = np.array([(r.lon, r.lat) for r in base], dtype=float).reshape(-1, 2)
    return _Points(base, cKDTree(xy) if len(base) else None, np.ones(len(base), bool), 0, (),
                   np.zeros((0, 2)), {r.code: (True, i) for i, r in enumerate(base)})


class PointIndex:
    """The active house numbers and buildings with a point: nearest-k as the SQL's KNN + ordering, and the
    addresses of each building footprint. Kept current by `apply` (a registry delta)."""

    def __init__(self, records: Iterable[AddressRecord]):
        self._state = _points(records)
        self.by_building: dict[int, tuple[AddressRecord, ...]] = {}
        for rec in self._state.base:
            if rec.building_id is not None:
                self.by_building[rec.building_id] = (*self.by_building.get(rec.building_id, ()), rec)

    def __len__(self) -> int:
        s = self._state
        return len(s.base) - s.dead + len(s.overlay)

    def apply(self, records: Iterable[AddressRecord], removed: Iterable[str] = ()) -> None:
        """The current version of each changed address (any level, any status) and the codes with no current
        version any more: a new published state."""
        s = self._state
        incoming = list(records)
        gone = set(removed) | {r.code for r in incoming}
        alive = s.alive.copy()
        dead = s.dead
        where = dict(s.where)
        overlay = [r for r in s.overlay if r.code not in gone]
        old: list[AddressRecord] = [r for r in s.overlay if r.code in gone]
        for code in gone:
            at = where.pop(code, None)
            if at is not None and at[0]:
                alive[at[1]] = False
                dead += 1
                old.append(s.base[at[1]])
        new = [r for r in incoming if _is_point(r)]
        overlay.extend(new)
        # the footprints' addresses: the changed codes leave their old building, the new versions join theirs
        for rec in old:
            if rec.building_id is not None:
                left = tuple(r for r in self.by_building.get(rec.building_id, ()) if r.code != rec.code)
                if left:
                    self.by_building[rec.building_id] = left
                else:
                    self.by_building.pop(rec.building_id, None)
        for rec in new:
            if rec.building_id is not None:
                self.by_building[rec.building_id] = (*self.by_building.get(rec.building_id, ()), rec)
        if len(overlay) > max(OVERLAY_MAX, OVERLAY_SHARE * len(s.base)):
            everything = [r for i, r in enumerate(s.base) if alive[i]] + overlay
            self._state = _points(everything)
            return
        for j, rec in enumerate(overlay):
            where[rec.code] = (False, j)
        xy = np.array([(r.lon, r.lat) for r in overlay], dtype=float).reshape(-1, 2)
        self._state = _Points(s.base, s.tree, alive, dead, tuple(overlay), xy, where)

    def candidates(self, lon: float, lat: float, kk: int) -> list[AddressRecord]:
        """The ``kk`` points nearest to (lon, lat) by planar distance in degrees (PostGIS's ``<->``)."""
        s = self._state
        found: list[tuple[float, AddressRecord]] = []
        if s.tree is not None:
            n = len(s.base)
            want = min(n, kk + min(s.dead, kk) + 1)
            while True:
                dist, idx = s.tree.query((lon, lat), k=want)
                dist, idx = np.atleast_1d(dist), np.atleast_1d(idx)
                ok = idx < n
                dist, idx = dist[ok], idx[ok]
                live = s.alive[idx]
                if int(live.sum()) >= kk or want >= n:
                    found = [(float(d), s.base[i]) for d, i in zip(dist[live][:kk], idx[live][:kk], strict=True)]
                    break
                want = min(n, want * 4)
        if s.overlay:
            d = np.hypot(s.overlay_xy[:, 0] - lon, s.overlay_xy[:, 1] - lat)
            found += [(float(x), r) for x, r in zip(d, s.overlay, strict=True)]
            found.sort(key=lambda t: t[0])
            found = found[:kk]
        return [r for _d, r in found]


# -- polygons --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PolygonLayer:
    """Polygons with one attribute row each, in an STRtree; ``at(lon, lat)``: the rows whose polygon
    intersects the point (``ST_Intersects``)."""

    geoms: np.ndarray
    rows: tuple[Any, ...]
    tree: STRtree = field(repr=False)

    @classmethod
    def of(cls, pairs: Iterable[tuple[Any, Any]], prepare: bool = False) -> PolygonLayer:
        """A layer from (geometry, row) pairs (geometries without a polygon are left out); ``prepare``: GEOS
        prepared geometries (point-in-polygon in logarithmic time: for the large admin / grid polygons)."""
        kept = [(g, r) for g, r in pairs if g is not None and not g.is_empty]
        geoms = np.array([g for g, _r in kept], dtype=object)
        if prepare and len(geoms):
            shapely.prepare(geoms)
        return cls(geoms, tuple(r for _g, r in kept), STRtree(geoms))

    def __len__(self) -> int:
        return len(self.rows)

    def at(self, point: Any) -> list[Any]:
        """The rows whose polygon intersects the (shapely) point."""
        if not len(self.rows):
            return []
        idx = self.tree.query(point)  # the boxes holding the point, then the (prepared) polygons
        if not len(idx):
            return []
        return [self.rows[i] for i in idx[shapely.intersects(self.geoms[idx], point)]]

    def near(self, point: Any, distance: float) -> list[int]:
        """The indices of the polygons within ``distance`` (planar, the geometry's units) of the point."""
        if not len(self.rows):
            return []
        return [int(i) for i in self.tree.query(point, predicate="dwithin", distance=distance)]


@dataclass(frozen=True)
class AdminRow:
    """An admin unit as the SQL's admin branch reads it."""

    code: str
    name: str | None
    level: str
    source: str | None
    valid_to: datetime | None


@dataclass(frozen=True)
class GridRow:
    """A current grid / micro-grid row."""

    code: str
    name: str | None
    level: str


@dataclass(frozen=True)
class CompoundRow:
    """An active compound with its polygon's planar area (degrees², as ``ST_Area`` on geometry)."""

    code: str
    name: str | None
    area: float


def compound_layer(records: Iterable[AddressRecord]) -> PolygonLayer:
    """The active compounds with an area, from registry records."""
    return PolygonLayer.of(
        (r.area, CompoundRow(r.code, r.components.get("compound"), float(shapely.area(r.area))))
        for r in records if r.level == "compound" and r.status == "active" and r.area is not None)


# -- the answer ------------------------------------------------------------------------------------------
@dataclass
class ReverseIndex:
    """Everything reverse geocoding reads, in memory. ``parent_source(code)``: the source of a building
    record's parent (its current version, whatever its status), or None."""

    points: PointIndex
    buildings: PolygonLayer  # rows: building ids
    admin: PolygonLayer  # rows: AdminRow
    grids: PolygonLayer  # rows: GridRow
    compounds: PolygonLayer  # rows: CompoundRow
    parent_source: Callable[[str], str | None]

    def parts(self, lon: float, lat: float, k: int, max_m: float, now: datetime) -> ReverseParts:
        """`store.reverse_parts`'s answer at (lon, lat) WGS84, from memory (``now``: the time admin units'
        ``valid_to`` are compared with)."""
        point = shapely.Point(lon, lat)
        return ReverseParts(self.footprint(lon, lat, max_m, point), self.nearest(lon, lat, k),
                            self.admin_at(point, now), self.grid_at(point), self.compound_at(point))

    def _hit(self, rec: AddressRecord, distance_m: float, extent: float | None) -> AddressHit:
        parent = self.parent_source(rec.parent_code) if rec.level == "building" and rec.parent_code else None
        assert rec.lon is not None and rec.lat is not None
        return AddressHit(rec.code, rec.level, rec.source, parent, rec.components, float(rec.lon), float(rec.lat),
                          distance_m, extent)

    def footprint(self, lon: float, lat: float, max_m: float, point: Any = None) -> AddressHit | None:
        """The address of the footprint within ``max_m`` metres (the SQL's footprint branch)."""
        best: tuple[Any, ...] | None = None
        point = point if point is not None else shapely.Point(lon, lat)
        near = [i for i in self.buildings.near(point, FOOTPRINT_SEARCH_DEG) if self.points.by_building.get(
            self.buildings.rows[i])]
        if not near:
            return None
        # the exact (spheroidal) distance only where it can be within max_m: a degree is at least
        # `_M_PER_DEG_MIN` metres here in any direction, so the planar distance in degrees bounds it below
        planar = shapely.distance(self.buildings.geoms[near], point)
        floor = _M_PER_DEG_MIN * math.cos(math.radians(min(abs(lat) + 0.5, 89.0)))
        limit = max_m
        for deg, i in sorted(zip(planar.tolist(), near, strict=True)):
            if deg * floor > limit:
                break  # nearer first: no farther footprint can be within max_m or tie the best one's key
            recs = self.points.by_building[self.buildings.rows[i]]
            geom = self.buildings.geoms[i]
            d = polygon_distance_m(lon, lat, geom)
            if d > max_m:
                continue
            key = rounded_key(d, 1)
            for rec in recs:
                cand = (key, _RANK[rec.level], rec.code, rec, d, geom)
                if best is None or cand[:3] < best[:3]:
                    best = cand
            # a footprint can still win only with the same rounded distance (then by level and code)
            if best is not None:
                limit = min(max_m, (best[0] + 0.5) / 10.0 + 1e-6)
        if best is None:
            return None
        rec, d, geom = best[3], best[4], best[5]
        assert rec.lon is not None and rec.lat is not None
        return self._hit(rec, d, extent_m(rec.lon, rec.lat, geom))

    def nearest(self, lon: float, lat: float, k: int) -> list[AddressHit]:
        """The ``k`` nearest address points (the SQL's nearest branch: ``max(k·8, 16)`` KNN candidates)."""
        cands = self.points.candidates(lon, lat, max(k * 8, 16))
        if not cands:
            return []
        dist = geodesic_m(lon, lat, np.array([r.lon for r in cands], float), np.array([r.lat for r in cands], float))
        ranked = sorted(zip(cands, dist.tolist(), strict=True),
                        key=lambda t: (rounded_key(t[1], 2), _RANK[t[0].level], t[0].code))
        return [self._hit(rec, d, None) for rec, d in ranked[:k]]

    def admin_at(self, point: Any, now: datetime) -> dict[str, dict[str, Any]]:
        """The district / township / community holding the (shapely) point, by level."""
        rows = sorted((r for r in self.admin.at(point) if r.valid_to is None or r.valid_to > now),
                      key=lambda r: (len(r.code), r.code))
        out: dict[str, dict[str, Any]] = {}
        for r in rows:
            out.setdefault(r.level, {"code": r.code, "name": r.name, "source": r.source})
        return out

    def grid_at(self, point: Any) -> dict[str, Any] | None:
        """The grid holding the (shapely) point, with the micro-grid beside it (as `store.reverse_parts`)."""
        grids: dict[str, dict[str, Any]] = {}
        for r in sorted(self.grids.at(point), key=lambda r: r.code):
            grids.setdefault(r.level, {"code": r.code, "name": r.name})
        if not grids:
            return None
        grid = grids.get("grid") or next(iter(grids.values()))
        if "microgrid" in grids and grids["microgrid"] is not grid:
            grid = {**grid, "microgrid": grids["microgrid"]}
        return grid

    def compound_at(self, point: Any) -> dict[str, Any] | None:
        """The smallest compound holding the (shapely) point."""
        rows = self.compounds.at(point)
        if not rows:
            return None
        r = min(rows, key=lambda r: (r.area, r.code))
        return {"code": r.code, "name": r.name}


def layers_of(buildings: Sequence[tuple[int, Any]], admin: Sequence[tuple[Any, AdminRow]],
              grids: Sequence[tuple[Any, GridRow]]) -> tuple[PolygonLayer, PolygonLayer, PolygonLayer]:
    """The building, admin and grid layers from (id | row, geometry) pairs as the loader reads them."""
    return (PolygonLayer.of((g, bid) for bid, g in buildings), PolygonLayer.of(admin), PolygonLayer.of(grids))


__all__ = ["AdminRow", "CompoundRow", "GridRow", "PointIndex", "PolygonLayer", "ReverseIndex", "compound_layer",
           "extent_m", "geodesic_m", "layers_of", "numeric_round", "polygon_distance_m"]
