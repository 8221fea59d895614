"""Database side of the layer registry: which layers exist in this database, and their features.

SQL comes from :mod:`layers.sql` (registry identifiers + bound parameters only).
"""

from __future__ import annotations

import dataclasses

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Connection

from geo.cache import TtlCache
from geo.geojson import transform_feature
from geo.pg import db_key
from layers import registry
from layers.ogc import ItemsQuery
from layers.registry import Layer
from layers.sql import count_sql, extent_sql, item_sql, items_sql

_catalogue: TtlCache[dict[str, Layer]] = TtlCache(ttl_s=5.0)


def _resolve(conn: Connection) -> dict[str, Layer]:
    tables = sorted({layer.table for layer in registry.all_layers()})
    rows = conn.execute(
        text(
            "SELECT c.table_name, array_agg(c.column_name::text) FROM information_schema.columns c "
            "WHERE c.table_schema = current_schema() AND c.table_name = ANY(:tables) GROUP BY 1"
        ),
        {"tables": tables},
    ).all()
    columns = {name: set(cols) for name, cols in rows}
    out: dict[str, Layer] = {}
    for layer in registry.all_layers():
        cols = columns.get(layer.table)
        if not cols or layer.id_column not in cols or layer.geom_column not in cols:
            continue  # table not created yet (its feature's migration has not run): skip the layer
        present = tuple(p for p in layer.properties if p.col in cols)
        vf = layer.valid_from if layer.valid_from in cols else None
        vt = layer.valid_to if (vf and layer.valid_to in cols) else None
        if present != layer.properties or vf != layer.valid_from or vt != layer.valid_to:
            layer = dataclasses.replace(layer, properties=present, valid_from=vf, valid_to=vt)
        out[layer.id] = layer
    return out


def available_layers(conn: Connection) -> dict[str, Layer]:
    """Registered layers whose table exists here (columns missing from the table are dropped)."""
    return _catalogue.get(db_key(conn), lambda: _resolve(conn))


def forget_layers() -> None:
    """Drop the cached table check (after a migration in the same process)."""
    _catalogue.invalidate()


def fetch_items(conn: Connection, layer: Layer, q: ItemsQuery) -> tuple[list[str], int]:
    """Features of one page as GeoJSON text (in the requested CRS) and the number matched."""
    sql, params = items_sql(layer, q)
    features = [row[0] for row in conn.execute(text(sql), params)]
    if q.offset == 0 and len(features) < q.limit:
        matched = len(features)
    else:
        csql, cparams = count_sql(layer, q)
        matched = int(conn.execute(text(csql), cparams).scalar_one())
    if q.crs.gcj02:
        features = [_to_gcj02(f) for f in features]
    return features, matched


def fetch_item(conn: Connection, layer: Layer, fid: int | str, *, lat_first: bool = False,
               gcj02: bool = False) -> str | None:
    """One feature as GeoJSON text (axis order / GCJ-02 as asked), or None when the layer has no such id."""
    row = conn.execute(text(item_sql(layer, lat_first=lat_first and not gcj02)), {"fid": fid}).first()
    if row is None:
        return None
    return _to_gcj02(row[0]) if gcj02 else row[0]


def fetch_features(conn: Connection, layer: Layer, *, bbox=None, limit: int = 50_000) -> dict:
    """A whole FeatureCollection (WGS84) as a dict, for exports."""
    q = ItemsQuery(limit=limit, bbox=bbox)
    sql, params = items_sql(layer, q)
    return {"type": "FeatureCollection",
            "features": [orjson.loads(row[0]) for row in conn.execute(text(sql), params)]}


def layer_extent(conn: Connection, layer: Layer):
    """((minx, miny, maxx, maxy) | None, (tmin, tmax) | None)."""
    row = conn.execute(text(extent_sql(layer))).first()
    bbox = None
    if row is not None and row[0] is not None:
        bbox = (float(row[0]), float(row[1]), float(row[2]), float(row[3]))
    temporal = None
    if layer.has_time and row is not None:
        temporal = (_iso(row[4]), _iso(row[5]))
    return bbox, temporal


def _iso(value: str | None) -> str | None:
    if value is None:
        return None
    # PostgreSQL timestamptz text "2024-01-01 00:00:00+00" → RFC 3339
    out = value.replace(" ", "T", 1)
    if out.endswith("+00"):
        out = out[:-3] + "Z"
    return out


def _to_gcj02(feature_json: str) -> str:
    from geo.crs import wgs84_to_gcj02

    return orjson.dumps(transform_feature(orjson.loads(feature_json), wgs84_to_gcj02)).decode()
