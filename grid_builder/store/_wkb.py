"""Geometry to and from the database: WKB in, WKB out (SRID 4326 is set in the SQL)."""

from __future__ import annotations

import shapely
from shapely import wkb as shp_wkb
from shapely.geometry.base import BaseGeometry


def from_wkb(raw) -> BaseGeometry | None:
    """A shapely geometry from WKB bytes (or memoryview) read from the database; None for NULL."""
    if raw is None:
        return None
    return shp_wkb.loads(bytes(raw))


def to_wkb(geom: BaseGeometry) -> bytes:
    """WKB bytes of a lon/lat geometry, for ``ST_GeomFromWKB(:param, 4326)``."""
    return shapely.to_wkb(geom, include_srid=False)
