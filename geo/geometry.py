"""Shapely helpers shared by the packages: polygonal parts of any geometry, MultiPolygon coercion."""

from __future__ import annotations

import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry


def polygons_of(geom: BaseGeometry | None) -> list[Polygon]:
    """The polygon parts of any geometry (collections included), empty parts dropped."""
    if geom is None or geom.is_empty:
        return []
    if isinstance(geom, Polygon):
        return [geom]
    if isinstance(geom, MultiPolygon):
        return [g for g in geom.geoms if not g.is_empty]
    if hasattr(geom, "geoms"):
        out: list[Polygon] = []
        for g in geom.geoms:
            out.extend(polygons_of(g))
        return out
    return []


def as_multipolygon(geom: BaseGeometry | None) -> MultiPolygon:
    """The polygon parts of ``geom`` as one MultiPolygon (empty when it has none)."""
    return MultiPolygon(polygons_of(geom))


def repaired_multipolygon(geom: BaseGeometry | None) -> MultiPolygon | None:
    """Any polygonal geometry, repaired when invalid, as a MultiPolygon; None when nothing is left."""
    if geom is None or geom.is_empty:
        return None
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    multi = as_multipolygon(geom)
    return multi if not multi.is_empty else None
