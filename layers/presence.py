"""Which registered layers hold any feature: the web map does not tick an empty layer by default."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from layers.registry import Layer


def has_rows(conn: Connection, layer: Layer) -> bool:
    """Whether the layer's table has a row its fixed filter keeps (identifiers come from the registry)."""
    if not conn.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": layer.table}).scalar_one():
        return False
    where = f" WHERE {layer.where}" if layer.where else ""
    return bool(conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {layer.table} t{where})")).scalar_one())


def shown_by_default(conn: Connection, layers: list[Layer]) -> set[str]:
    """Ids of the layers the web map ticks at start: marked ``web_default``, not basemap, not empty."""
    return {layer.id for layer in layers if layer.web_default and not layer.basemap and has_rows(conn, layer)}
