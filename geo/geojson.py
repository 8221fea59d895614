"""GeoJSON helpers (pure): Feature / FeatureCollection building, coordinate transforms, FeatureCollection text."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import orjson
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

DECIMALS = 7


def _flatten(coords, out: list) -> None:
    if coords and isinstance(coords[0], (int, float)):
        out.append(coords)
    else:
        for c in coords:
            _flatten(c, out)


def _rebuild(coords, it):
    if coords and isinstance(coords[0], (int, float)):
        x, y = next(it)
        return [x, y, *coords[2:]]
    return [_rebuild(c, it) for c in coords]


def transform_geometry(geom: dict | None, func: Callable) -> dict | None:
    """Apply an array function ``(lon[], lat[]) -> (lon[], lat[])`` to every position."""
    if geom is None:
        return None
    if geom.get("type") == "GeometryCollection":
        return {**geom, "geometries": [transform_geometry(g, func) for g in geom["geometries"]]}
    flat: list = []
    _flatten(geom["coordinates"], flat)
    if not flat:
        return geom
    arr = np.array([p[:2] for p in flat], dtype=float)
    lon, lat = func(arr[:, 0], arr[:, 1])
    lon = np.round(np.asarray(lon, dtype=float), DECIMALS)
    lat = np.round(np.asarray(lat, dtype=float), DECIMALS)
    it = iter(zip(lon.tolist(), lat.tolist(), strict=True))
    return {**geom, "coordinates": _rebuild(geom["coordinates"], it)}


def transform_feature(feature: dict, func: Callable) -> dict:
    """A copy of a GeoJSON Feature with its geometry's coordinates passed through ``func(lon, lat)``."""
    return {**feature, "geometry": transform_geometry(feature.get("geometry"), func)}


def feature_collection_text(features: list[str], *, number_matched: int | None = None,
                            links: list[dict] | None = None, time_stamp: str | None = None) -> bytes:
    """Assemble a FeatureCollection from features already serialised as JSON text (no re-parsing)."""
    parts = [b'{"type":"FeatureCollection","features":[', ",".join(features).encode(), b"]"]
    if number_matched is not None:
        parts.append(b',"numberMatched":' + str(number_matched).encode())
    parts.append(b',"numberReturned":' + str(len(features)).encode())
    if time_stamp:
        parts.append(b',"timeStamp":' + orjson.dumps(time_stamp))
    if links is not None:
        parts.append(b',"links":' + orjson.dumps(links))
    parts.append(b"}")
    return b"".join(parts)


def feature(geometry: dict | BaseGeometry | None, properties: dict, *, id: str | int | None = None) -> dict:
    """A GeoJSON Feature dict; ``geometry`` may be a shapely geometry or a GeoJSON geometry dict."""
    if geometry is not None and not isinstance(geometry, dict):
        geometry = mapping(geometry)
    out: dict = {"type": "Feature"}
    if id is not None:
        out["id"] = id
    out["properties"] = properties
    out["geometry"] = geometry
    return out


def feature_collection(features: Iterable[dict], **members) -> dict:
    """A GeoJSON FeatureCollection dict of ``features`` (extra top-level members, e.g. ``summary``)."""
    return {"type": "FeatureCollection", "features": list(features), **members}
