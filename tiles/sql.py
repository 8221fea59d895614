"""ST_AsMVT SQL for one layer or a multi-layer (basemap) tile.

Identifiers come from the layer registry only; the tile address and thresholds are bound
parameters. The tile envelopes are computed here (exactly what ``ST_TileEnvelope`` gives) so the
planner sees constants and uses the GiST index on the stored EPSG:4326 geometry.
"""

from __future__ import annotations

import math

from layers.registry import Layer
from tiles.tms import BUFFER, EXTENT, WORLD_M, Tile, min_area_deg2, min_length_deg, simplify_tolerance_m

_MAX_LAT = 85.0511287798066


def envelope_3857(tile: Tile, margin: float = 0.0) -> tuple[float, float, float, float]:
    """The tile's bounds in EPSG:3857 metres, grown by ``margin`` tile widths on each side."""
    span = tile.span_m
    half = WORLD_M / 2
    x0 = -half + tile.x * span
    y1 = half - tile.y * span
    pad = span * margin
    return x0 - pad, y1 - span - pad, x0 + span + pad, y1 + pad


def _lon(xm: float) -> float:
    return max(-180.0, min(180.0, xm / (WORLD_M / 2) * 180.0))


def _lat(ym: float) -> float:
    lat = math.degrees(2 * math.atan(math.exp(ym / 6378137.0)) - math.pi / 2)
    return max(-_MAX_LAT, min(_MAX_LAT, lat))


def envelope_lonlat(tile: Tile, margin: float = BUFFER / EXTENT) -> tuple[float, float, float, float]:
    """The tile plus its MVT buffer, in lon/lat: rows whose bbox misses it cannot appear in the tile."""
    x0, y0, x1, y1 = envelope_3857(tile, margin)
    return _lon(x0), _lat(y0), _lon(x1), _lat(y1)


def _prop_expr(layer: Layer, name: str) -> str:
    prop = layer.prop(name)
    assert prop is not None
    # MVT values are strings, numbers or booleans: dates travel as ISO text.
    if prop.type in ("date", "datetime"):
        return f"t.{prop.col}::text AS {prop.name}"
    return f"t.{prop.col} AS {prop.name}"


def layer_mvt_sql(layer: Layer, tile: Tile, prefix: str, params: dict) -> str:
    """A scalar sub-select giving this layer's MVT layer (``bytea``, empty if no feature)."""
    p = prefix
    g = f"t.{layer.geom_column}"
    params.update(
        {
            f"{p}name": layer.id,
            f"{p}bx0": 0.0,
            f"{p}by0": 0.0,
            f"{p}bx1": 0.0,
            f"{p}by1": 0.0,
        }
    )
    params[f"{p}bx0"], params[f"{p}by0"], params[f"{p}bx1"], params[f"{p}by1"] = envelope_lonlat(tile)
    conds = [f"{g} && ST_MakeEnvelope(:{p}bx0, :{p}by0, :{p}bx1, :{p}by1, 4326)"]
    if layer.where:
        conds.append(f"({layer.where})")
    th = layer.thinning
    if tile.z < th.full_zoom:
        family = layer.geometry_family
        if family == "Polygon" and th.min_area_px > 0:
            params[f"{p}minarea"] = min_area_deg2(tile, th.min_area_px)
            conds.append(f"ST_Area({g}) >= :{p}minarea")
        if family == "LineString" and th.min_length_px > 0:
            params[f"{p}minlen"] = min_length_deg(tile, th.min_length_px)
            conds.append(f"ST_Length({g}) >= :{p}minlen")
        if th.kind_column and th.kinds_low_zoom:
            params[f"{p}kinds"] = list(th.kinds_low_zoom)
            conds.append(f"t.{th.kind_column} = ANY(:{p}kinds)")

    geom = f"ST_Transform({g}, 3857)"
    if layer.geometry_family != "Point":
        params[f"{p}tol"] = simplify_tolerance_m(tile)
        geom = f"ST_Simplify({geom}, :{p}tol, true)"
    env = envelope_3857(tile)
    params.update({f"{p}ex0": env[0], f"{p}ey0": env[1], f"{p}ex1": env[2], f"{p}ey1": env[3]})
    mvt_geom = (
        f"ST_AsMVTGeom({geom}, ST_MakeEnvelope(:{p}ex0, :{p}ey0, :{p}ex1, :{p}ey1, 3857), "
        f"{EXTENT}, {BUFFER}, true)"
    )
    names = [q.name for q in layer.properties]
    # MVT feature ids are integers; a text id travels as the "fid" property instead.
    fid = f"{layer.id_expr} AS fid" if layer.id_is_text else f"{layer.id_expr} AS __fid"
    select = ", ".join([fid, *(_prop_expr(layer, n) for n in names), f"{mvt_geom} AS __geom"])
    id_arg = "" if layer.id_is_text else ", '__fid'"
    return (
        f"COALESCE((SELECT ST_AsMVT(m.*, :{p}name, {EXTENT}, '__geom'{id_arg}) FROM "
        # ordered by id: the same rows always give the same bytes (a re-rendered tile keeps its ETag)
        f"(SELECT {select} FROM {layer.table} t WHERE {' AND '.join(conds)} ORDER BY {layer.id_expr}) m "
        f"WHERE m.__geom IS NOT NULL), ''::bytea)"
    )


def tile_expr(layers: list[Layer], tile: Tile) -> tuple[str, dict]:
    """A ``bytea`` expression giving the whole tile (MVT layers concatenated, as the format allows).

    Layers whose zoom range excludes ``tile.z`` are left out; with none left the tile is empty.
    """
    params: dict = {}
    parts = [
        layer_mvt_sql(layer, tile, f"l{i}_", params)
        for i, layer in enumerate(layers)
        if layer.min_zoom <= tile.z <= layer.max_zoom
    ]
    if not parts:
        return "''::bytea", params
    return " || ".join(parts), params


def tile_sql(layers: list[Layer], tile: Tile) -> tuple[str, dict]:
    """``SELECT`` of the whole tile's bytes, and its parameters."""
    expr, params = tile_expr(layers, tile)
    return f"SELECT {expr}", params
