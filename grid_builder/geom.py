"""Small geometry helpers shared by the grid builder's pure core (no I/O)."""

from __future__ import annotations

import math
from functools import lru_cache

import shapely
import shapely.errors
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from geo.geometry import as_multipolygon, polygons_of

__all__ = ["as_multipolygon", "polygons_of"]

METRIC_EPSG = 32651  # UTM 51N, metres, for Shanghai


@lru_cache(maxsize=1)
def _fwd() -> Transformer:
    return Transformer.from_crs(4326, METRIC_EPSG, always_xy=True)


@lru_cache(maxsize=1)
def _inv() -> Transformer:
    return Transformer.from_crs(METRIC_EPSG, 4326, always_xy=True)


def to_metric(geom: BaseGeometry) -> BaseGeometry:
    return shapely.transform(geom, lambda c: _stack(_fwd().transform(c[:, 0], c[:, 1])))


def to_wgs84(geom: BaseGeometry) -> BaseGeometry:
    return shapely.transform(geom, lambda c: _stack(_inv().transform(c[:, 0], c[:, 1])))


def to_lonlat(geom: BaseGeometry) -> BaseGeometry:
    """Metric → lon/lat MultiPolygon, snapped to 1e-9° (≈0.1 mm) so that the result is valid: sliver
    vertices a few µm apart, or a vertex lying on another part's edge (valid in metres), otherwise turn into
    self-intersections after reprojection (a straight edge does not stay straight through it). Every
    polygon written in lon/lat from a metric computation goes through here (the build and the edits)."""
    g = to_wgs84(geom)
    if not g.is_valid:
        g = shapely.make_valid(g)
    g = shapely.set_precision(g, 1e-9)
    return as_multipolygon(MultiPolygon([p for p in polygons_of(g) if p.area > 0]))


def _stack(xy):
    import numpy as np

    return np.column_stack(xy)


def clean_polygonal(geom: BaseGeometry) -> tuple[MultiPolygon, bool]:
    """Make a polygonal geometry valid. Returns (geometry, was_repaired)."""
    if geom is None or geom.is_empty:
        return MultiPolygon(), False
    if geom.is_valid and polygons_of(geom):
        return as_multipolygon(geom), False
    fixed = shapely.make_valid(geom)
    return as_multipolygon(fixed), True


def polsby_popper(geom: BaseGeometry) -> float:
    """4πA / P² (1 for a circle); for metric geometries."""
    if geom is None or geom.is_empty or geom.length == 0:
        return 0.0
    return 4.0 * math.pi * geom.area / (geom.length**2)


def n_parts(geom: BaseGeometry, min_area_m2: float = 1.0, gap_tol_m: float = 0.1) -> int:
    """Parts of at least ``min_area_m2``; parts closer than ``gap_tol_m`` count as touching (units cut
    from the same linework can be a few centimetres apart after snap-rounding)."""
    if gap_tol_m > 0 and geom is not None and not geom.is_empty:
        geom = geom.buffer(gap_tol_m / 2.0, quad_segs=2)
    return sum(1 for p in polygons_of(geom) if p.area >= min_area_m2)


def safe_union(geoms) -> BaseGeometry:
    """Union that survives GEOS topology errors on near-coincident edges (snap-rounds to 1 mm)."""
    geoms = [g for g in geoms if g is not None and not g.is_empty]
    if not geoms:
        return Polygon()
    try:
        return shapely.union_all(geoms)
    except shapely.errors.GEOSException:
        pass
    try:
        return shapely.union_all(geoms, grid_size=0.001)
    except shapely.errors.GEOSException:
        # an invalid part (a ring touching itself after snap-rounding, met in a 10⁶-address synthetic city:
        # "unable to assign free hole to a shell") fails even the snapped union: repair the parts first
        return shapely.union_all([shapely.make_valid(g) for g in geoms], grid_size=0.001)


def safe_intersection(a: BaseGeometry, b: BaseGeometry) -> BaseGeometry:
    try:
        return a.intersection(b)
    except shapely.errors.GEOSException:
        return shapely.intersection(shapely.make_valid(a), shapely.make_valid(b), grid_size=0.001)


def safe_difference(a: BaseGeometry, b: BaseGeometry) -> BaseGeometry:
    try:
        return a.difference(b)
    except shapely.errors.GEOSException:
        return shapely.difference(shapely.make_valid(a), shapely.make_valid(b), grid_size=0.001)
