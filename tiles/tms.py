"""WebMercatorQuad tile arithmetic (pure; no database).

Tile (z, x, y) in the OGC WebMercatorQuad / XYZ scheme: x from the antimeridian eastwards,
y from the north edge southwards, ``0 <= x, y < 2**z``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from geo.errors import BadRequest

MAX_ZOOM = 22
EXTENT = 4096  # MVT integer grid per tile
BUFFER = 64  # MVT buffer in grid units (features reaching this far past the edge are kept)
WORLD_M = 2 * math.pi * 6378137.0  # EPSG:3857 world width in metres
DEG_M = WORLD_M / 360.0  # EPSG:3857 metres per degree of longitude


class TileError(BadRequest, ValueError):
    """Bad tile address (400); the message is safe to show."""


@dataclass(frozen=True)
class Tile:
    """One tile address: zoom ``z``, column ``x``, row ``y`` (from the north)."""

    z: int
    x: int
    y: int

    def bounds_lonlat(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) of the tile in degrees."""
        n = 2**self.z
        lon0 = self.x / n * 360.0 - 180.0
        lon1 = (self.x + 1) / n * 360.0 - 180.0
        lat0 = _tile_lat(self.y + 1, n)
        lat1 = _tile_lat(self.y, n)
        return lon0, lat0, lon1, lat1

    def center_lat(self) -> float:
        """Latitude halfway between the tile's south and north edges."""
        _, lat0, _, lat1 = self.bounds_lonlat()
        return (lat0 + lat1) / 2

    @property
    def span_m(self) -> float:
        """Tile width in EPSG:3857 metres."""
        return WORLD_M / 2**self.z

    @property
    def pixel_m(self) -> float:
        """One pixel of a 256-pixel tile, in EPSG:3857 metres."""
        return self.span_m / 256.0


def _tile_lat(y: float, n: int) -> float:
    return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / n))))


def parse_tile(z, x, y, *, max_zoom: int = MAX_ZOOM) -> Tile:
    """Check a tile address from a URL (ints or strings); :class:`TileError` if out of range."""
    try:
        zi, xi, yi = int(z), int(x), int(y)
    except (TypeError, ValueError):
        raise TileError(f"瓦片坐标必须是整数：z={z!r} x={x!r} y={y!r}") from None
    if not 0 <= zi <= max_zoom:
        raise TileError(f"缩放级别 z={zi} 超出范围 0…{max_zoom}")
    n = 2**zi
    if not (0 <= xi < n and 0 <= yi < n):
        raise TileError(f"瓦片 {zi}/{xi}/{yi} 超出范围：在 z={zi} 时 x、y 应在 0…{n - 1}")
    return Tile(zi, xi, yi)


def tile_for_lonlat(lon: float, lat: float, z: int) -> Tile:
    """The tile of zoom ``z`` holding a lon/lat point (clamped to the world's tiles)."""
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    lat_r = math.radians(lat)
    y = int((1.0 - math.asinh(math.tan(lat_r)) / math.pi) / 2.0 * n)
    return Tile(z, min(max(x, 0), n - 1), min(max(y, 0), n - 1))


def tiles_for_bbox(bbox: tuple[float, float, float, float], z: int) -> list[Tile]:
    """All tiles of zoom ``z`` touching a lon/lat bbox, row by row."""
    lo = tile_for_lonlat(bbox[0], bbox[3], z)
    hi = tile_for_lonlat(bbox[2], bbox[1], z)
    return [Tile(z, x, y) for y in range(lo.y, hi.y + 1) for x in range(lo.x, hi.x + 1)]


def min_area_deg2(tile: Tile, min_area_px: float) -> float:
    """Polygon area (in squared degrees, as ``ST_Area`` of EPSG:4326 geometry gives) below which a
    polygon covers fewer than ``min_area_px`` pixels at this tile's zoom.

    In EPSG:3857 one degree of longitude is ``DEG_M`` metres and one degree of latitude about
    ``DEG_M / cos(lat)``, so 1 deg² ≈ ``DEG_M² / cos(lat)`` m².
    """
    if min_area_px <= 0:
        return 0.0
    cos_lat = max(math.cos(math.radians(tile.center_lat())), 1e-6)
    return min_area_px * tile.pixel_m**2 * cos_lat / DEG_M**2


def min_length_deg(tile: Tile, min_length_px: float) -> float:
    """Line length in degrees below which a line is shorter than ``min_length_px`` pixels
    (east-west scale, the conservative one: it never drops a line that is longer on screen)."""
    if min_length_px <= 0:
        return 0.0
    return min_length_px * tile.pixel_m / DEG_M


def simplify_tolerance_m(tile: Tile) -> float:
    """Simplification tolerance in EPSG:3857 metres: one MVT grid unit, so it is lossless
    after ``ST_AsMVTGeom`` snaps to that grid anyway."""
    return tile.span_m / EXTENT
