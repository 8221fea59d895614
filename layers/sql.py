"""SQL text for any registered layer (identifiers from the registry, values as bound parameters).

Each builder returns ``(sql, params)`` for SQLAlchemy ``text()``. Nothing from a request is
interpolated: the only strings spliced in are registry identifiers, already checked against
``[a-z_][a-z0-9_]*`` when the :class:`~layers.registry.Layer` was built, and the registry's
fixed ``where`` fragment.
"""

from __future__ import annotations

from layers.ogc import ItemsQuery
from layers.registry import Layer

COORD_DECIMALS = 7  # ~1 cm; RFC 7946 recommends not inflating precision


def _props_json(layer: Layer, columns: dict[str, str] | None = None) -> str:
    """``json_build_object('name', t.name, …)`` (empty object if the layer exposes nothing)."""
    cols = columns or {p.name: p.col for p in layer.properties}
    if not cols:
        return "'{}'::json"
    items = list(cols.items())
    if len(items) <= 50:  # keeps the registry's property order
        return "json_build_object(" + ", ".join(f"'{name}', t.{col}" for name, col in items) + ")"
    # json_build_object takes at most 100 arguments; chunk and merge with jsonb ||.
    chunks = [items[i:i + 40] for i in range(0, len(items), 40)]
    parts = [
        "jsonb_build_object(" + ", ".join(f"'{name}', t.{col}" for name, col in chunk) + ")"
        for chunk in chunks
    ]
    return "(" + " || ".join(parts) + ")::json"


def where_clause(layer: Layer, q: ItemsQuery | None, params: dict) -> str:
    """`` WHERE …`` for the layer's fixed filter and the query's bbox, filters and datetime ('' if none).

    Values go into ``params``.
    """
    conds: list[str] = []
    fixed = layer.as_of_where if (q is not None and q.datetime is not None and layer.as_of_where) else layer.where
    if fixed:
        conds.append(f"({fixed})")
    if q is not None:
        if q.bbox is not None:
            params.update(bx0=q.bbox[0], by0=q.bbox[1], bx1=q.bbox[2], by1=q.bbox[3])
            env = "ST_MakeEnvelope(:bx0, :by0, :bx1, :by1, 4326)"
            conds.append(f"t.{layer.geom_column} && {env} AND ST_Intersects(t.{layer.geom_column}, {env})")
        for i, (name, value) in enumerate(sorted(q.filters.items())):
            prop = layer.prop(name)
            assert prop is not None
            params[f"f{i}"] = value
            conds.append(f"t.{prop.col} = :f{i}")
        if q.datetime is not None and layer.valid_from:
            start, end = q.datetime
            if end is not None:
                params["t_end"] = end
                conds.append(f"(t.{layer.valid_from} IS NULL OR t.{layer.valid_from} <= :t_end)")
            if start is not None and layer.valid_to:
                params["t_start"] = start
                if start == end:
                    conds.append(f"(t.{layer.valid_to} IS NULL OR t.{layer.valid_to} > :t_start)")
                else:
                    conds.append(f"(t.{layer.valid_to} IS NULL OR t.{layer.valid_to} >= :t_start)")
        if q.cql is not None:  # layers.cql2: registry identifiers, values bound as :q0, :q1…
            params.update(q.cql.params)
            conds.append(q.cql.sql)
    return (" WHERE " + " AND ".join(conds)) if conds else ""


def feature_select(layer: Layer, *, lat_first: bool = False, columns: dict[str, str] | None = None) -> str:
    """Expression giving one RFC 7946 Feature as JSON text."""
    g = f"t.{layer.geom_column}"
    if layer.geometry_family == "Polygon":
        g = f"ST_ForcePolygonCCW({g})"  # RFC 7946 §3.1.6: exterior rings counterclockwise
    if lat_first:
        g = f"ST_FlipCoordinates({g})"
    return (
        "json_build_object('type', 'Feature', 'id', " + layer.id_expr
        + f", 'geometry', ST_AsGeoJSON({g}, {COORD_DECIMALS})::json"
        + ", 'properties', " + _props_json(layer, columns) + ")::text"
    )


def items_sql(layer: Layer, q: ItemsQuery, *, columns: dict[str, str] | None = None) -> tuple[str, dict]:
    """One page of features (as GeoJSON text, ordered by id) and its parameters."""
    params: dict = {"lim": q.limit, "off": q.offset}
    where = where_clause(layer, q, params)
    sql = (
        f"SELECT {feature_select(layer, lat_first=q.crs.lat_first and not q.crs.gcj02, columns=columns)} "
        f"FROM {layer.table} t{where} ORDER BY {layer.id_expr} LIMIT :lim OFFSET :off"
    )
    return sql, params


def count_sql(layer: Layer, q: ItemsQuery) -> tuple[str, dict]:
    """The number of features the query matches, and its parameters."""
    params: dict = {}
    where = where_clause(layer, q, params)
    return f"SELECT count(*) FROM {layer.table} t{where}", params


def item_sql(layer: Layer, *, lat_first: bool = False, columns: dict[str, str] | None = None) -> str:
    """One feature by id (bound as ``:fid``), as GeoJSON text."""
    where = f" AND ({layer.where})" if layer.where else ""
    return (
        f"SELECT {feature_select(layer, lat_first=lat_first, columns=columns)} FROM {layer.table} t "
        f"WHERE {layer.id_expr} = :fid{where}"
    )


def extent_sql(layer: Layer) -> str:
    """Bounding box (and valid-time range if any) of the layer's rows."""
    where = f" WHERE {layer.where}" if layer.where else ""
    tmin = f"min(t.{layer.valid_from})::text" if layer.valid_from else "NULL::text"
    tmax = f"max(t.{layer.valid_to})::text" if layer.valid_to else "NULL::text"
    return (
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), tmin, tmax FROM "
        f"(SELECT ST_Extent(t.{layer.geom_column}) AS e, {tmin} AS tmin, {tmax} AS tmax "
        f"FROM {layer.table} t{where}) s"
    )
