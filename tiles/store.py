"""Vector tiles from PostGIS with a server-side cache that edits invalidate exactly.

The cache is the ``tile_cache`` table (migration ``0005_layers``). Statement triggers on every
layer table delete, in the editing transaction itself, the cached tiles whose envelope meets a
changed row (see the migration), so an edit is visible on the very next request.

One race remains with any cache: a tile computed from data read *before* an edit commits but
stored *after* it. To close it, the tile is computed in the same statement that captures the
snapshot (``pg_current_snapshot()``), and it is stored only if no change to its tables and area
was committed outside that snapshot (``layer_change`` records each editing transaction's id).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from layers.registry import Layer
from tiles.sql import envelope_lonlat, tile_expr
from tiles.tms import Tile

_lock = threading.Lock()
_has_cache: dict[str, tuple[float, bool]] = {}
_triggers_ok: set[tuple[str, str]] = set()
_triggers_failed: set[tuple[str, str]] = set()
log = logging.getLogger(__name__)
_TTL_S = 10.0


@dataclass(frozen=True)
class TileResult:
    data: bytes
    etag: str
    cache: str  # "hit" | "miss" | "off"


def etag_of(data: bytes) -> str:
    return '"' + hashlib.blake2b(data, digest_size=10).hexdigest() + '"'


def tileset_version(layers: list[Layer]) -> str:
    """Short hash of the layer definitions a tile is drawn from (part of the cache key)."""
    return _version(tuple(layers))


@functools.lru_cache(maxsize=256)
def _version(layers: tuple[Layer, ...]) -> str:
    return hashlib.blake2b(repr(layers).encode(), digest_size=5).hexdigest()


def _db_key(conn: Connection) -> str:
    return conn.engine.url.render_as_string(hide_password=True)


def cache_available(conn: Connection) -> bool:
    key = _db_key(conn)
    now = time.monotonic()
    with _lock:
        hit = _has_cache.get(key)
        if hit and now - hit[0] < _TTL_S:
            return hit[1]
    ok = conn.execute(text("SELECT to_regclass('tile_cache') IS NOT NULL "
                           "AND to_regprocedure('shequ_ensure_tile_triggers(regclass)') IS NOT NULL")).scalar_one()
    with _lock:
        _has_cache[key] = (now, bool(ok))
    return bool(ok)


def ensure_triggers(conn: Connection, tables: list[str]) -> bool:
    """Install the invalidation triggers on tables created after migration 0005 (once per process).

    False if a table cannot get them (e.g. the database role does not own it): its tiles are then
    served uncached, never cached without invalidation.
    """
    key = _db_key(conn)
    ok = True
    for table in tables:
        if (key, table) in _triggers_ok:
            continue
        if (key, table) in _triggers_failed:
            ok = False
            continue
        try:
            with conn.begin_nested():
                conn.execute(text("SELECT shequ_ensure_tile_triggers(to_regclass(:t)) "
                                  "WHERE to_regclass(:t) IS NOT NULL"), {"t": table})
        except DBAPIError as exc:
            log.warning("tile cache disabled for %s: cannot install invalidation triggers (%s)",
                        table, str(getattr(exc, "orig", exc)).strip().splitlines()[0])
            with _lock:
                _triggers_failed.add((key, table))
            ok = False
            continue
        with _lock:
            _triggers_ok.add((key, table))
    return ok


def render_tile(conn: Connection, layers: list[Layer], tile: Tile) -> bytes:
    expr, params = tile_expr(layers, tile)
    data = conn.execute(text(f"SELECT {expr}"), params).scalar_one()
    return bytes(data or b"")


_INSERT = text(
    """
    INSERT INTO tile_cache (tileset, z, x, y, tables, env, data, etag)
    SELECT :ts, :z, :x, :y, :tables, ST_MakeEnvelope(:bx0, :by0, :bx1, :by1, 4326), :data, :etag
    WHERE NOT EXISTS (
        SELECT 1 FROM layer_change ch
        WHERE ch.xid >= pg_snapshot_xmin(CAST(:snap AS pg_snapshot))
          AND NOT pg_visible_in_snapshot(ch.xid, CAST(:snap AS pg_snapshot))
          AND ch.table_name = ANY(:tables)
          AND (ch.bbox IS NULL OR ch.bbox && ST_MakeEnvelope(:bx0, :by0, :bx1, :by1, 4326)))
    ON CONFLICT (tileset, z, x, y) DO UPDATE
        SET data = EXCLUDED.data, etag = EXCLUDED.etag, tables = EXCLUDED.tables,
            env = EXCLUDED.env, created_at = now()
    """
)


def get_tile(conn: Connection, tileset: str, layers: list[Layer], tile: Tile, *, use_cache: bool = True) -> TileResult:
    """The tile's MVT bytes, from the cache when it holds them, else rendered (and cached)."""
    if not use_cache or not cache_available(conn):
        data = render_tile(conn, layers, tile)
        return TileResult(data, etag_of(data), "off")

    row = conn.execute(
        text("SELECT data, etag FROM tile_cache WHERE tileset = :ts AND z = :z AND x = :x AND y = :y"),
        {"ts": tileset, "z": tile.z, "x": tile.x, "y": tile.y},
    ).first()
    if row is not None:
        return TileResult(bytes(row[0]), row[1], "hit")

    tables = sorted({layer.table for layer in layers})
    if not ensure_triggers(conn, tables):
        data = render_tile(conn, layers, tile)
        return TileResult(data, etag_of(data), "off")
    expr, params = tile_expr(layers, tile)
    snap, data = conn.execute(text(f"SELECT pg_current_snapshot()::text, {expr}"), params).one()
    data = bytes(data or b"")
    etag = etag_of(data)
    bx0, by0, bx1, by1 = envelope_lonlat(tile)
    conn.execute(_INSERT, {"ts": tileset, "z": tile.z, "x": tile.x, "y": tile.y, "tables": tables,
                           "bx0": bx0, "by0": by0, "bx1": bx1, "by1": by1, "data": data, "etag": etag,
                           "snap": snap})
    return TileResult(data, etag, "miss")


def clear_cache(conn: Connection, tileset: str | None = None) -> int:
    if tileset is None:
        return conn.execute(text("DELETE FROM tile_cache")).rowcount
    # Cache keys are "<tileset>@<definition hash>".
    return conn.execute(text("DELETE FROM tile_cache WHERE split_part(tileset, '@', 1) = :ts"),
                        {"ts": tileset}).rowcount


def cache_stats(conn: Connection) -> list[tuple[str, int, int]]:
    """(tileset, tiles, bytes) per tileset."""
    rows = conn.execute(text("SELECT tileset, count(*), coalesce(sum(length(data)), 0) FROM tile_cache "
                             "GROUP BY tileset ORDER BY tileset")).all()
    return [(r[0], int(r[1]), int(r[2])) for r in rows]
