"""Vector tiles from PostGIS with a server-side cache that edits invalidate exactly.

The cache is the ``tile_cache`` table (migration ``0005_layers``). Statement triggers on every
layer table delete, in the editing transaction itself, the cached tiles whose envelope meets a
changed row (see the migration), so an edit is visible on the very next request.

One race remains with any cache: a tile computed from data read *before* an edit commits but
stored *after* it. To close it, the tile is computed in the same statement that captures the
snapshot (``pg_current_snapshot()``), and it is stored only if no change to its tables and area
was committed outside that snapshot (``layer_change`` records each editing transaction's id).

Size cap (migration ``0009_tile_cache_lru``): each row keeps ``accessed_at`` and ``nbytes``. A cache hit
only reads; the caller hands the result to a :class:`CacheKeeper`, which queues the tile for an access
time refresh when its stored time is older than the touch interval, and counts the bytes a miss
stored. When enough has piled up, the keeper's :meth:`CacheKeeper.run` (after the HTTP response, in
the API) writes the queued access times in one ``UPDATE`` and, if the cache exceeds its cap, evicts
the least recently used tiles down to 90 % of the cap in one ``DELETE``. Both skip rows another
transaction holds (``SKIP LOCKED``), so they never wait on, or deadlock with, an edit whose triggers
are invalidating tiles.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from geo.cache import TtlCache
from geo.pg import db_key
from layers.registry import Layer
from tiles.sql import envelope_lonlat, tile_expr
from tiles.tms import Tile

_lock = threading.Lock()
_has_cache: TtlCache[bool] = TtlCache(ttl_s=10.0)
_triggers_ok: set[tuple[str, str]] = set()
_triggers_failed: set[tuple[str, str]] = set()
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TileResult:
    """A served tile: its MVT bytes, ETag, and whether the cache had it."""

    data: bytes
    etag: str
    cache: str  # "hit" | "miss" | "off"
    # hit: seconds since the stored last-access time (the keeper refreshes it when old enough)
    age_s: float | None = None


def etag_of(data: bytes) -> str:
    """A strong ETag of the tile bytes."""
    return '"' + hashlib.blake2b(data, digest_size=10).hexdigest() + '"'


def tileset_version(layers: list[Layer]) -> str:
    """Short hash of the layer definitions a tile is drawn from (part of the cache key)."""
    return _version(tuple(layers))


@functools.lru_cache(maxsize=256)
def _version(layers: tuple[Layer, ...]) -> str:
    return hashlib.blake2b(repr(layers).encode(), digest_size=5).hexdigest()


def cache_available(conn: Connection) -> bool:
    """True when this database has the tile cache (migration 0009) and its trigger installer (0005)."""
    # a database not yet migrated that far serves tiles uncached rather than failing
    return _has_cache.get(
        db_key(conn),
        lambda: bool(
            conn.execute(
                text(
                    "SELECT to_regprocedure('shequ_ensure_tile_triggers(regclass)') IS NOT NULL "
                    "AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('tile_cache') "
                    "AND attname = 'accessed_at' AND NOT attisdropped)"
                )
            ).scalar_one()
        ),
    )


def ensure_triggers(conn: Connection, tables: list[str]) -> bool:
    """Install the invalidation triggers on tables created after migration 0005 (once per process).

    False if a table cannot get them (e.g. the database role does not own it): its tiles are then
    served uncached, never cached without invalidation.
    """
    key = db_key(conn)
    ok = True
    for table in tables:
        if (key, table) in _triggers_ok:
            continue
        if (key, table) in _triggers_failed:
            ok = False
            continue
        try:
            with conn.begin_nested():
                conn.execute(
                    text(
                        "SELECT shequ_ensure_tile_triggers(to_regclass(:t)) WHERE to_regclass(:t) IS NOT NULL"
                    ),
                    {"t": table},
                )
        except DBAPIError as exc:
            log.warning(
                "tile cache disabled for %s: cannot install invalidation triggers (%s)",
                table,
                str(getattr(exc, "orig", exc)).strip().splitlines()[0],
            )
            with _lock:
                _triggers_failed.add((key, table))
            ok = False
            continue
        with _lock:
            _triggers_ok.add((key, table))
    return ok


def render_tile(conn: Connection, layers: list[Layer], tile: Tile) -> bytes:
    """Draw the tile from the layer tables, bypassing the cache."""
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
            env = EXCLUDED.env, created_at = now(), accessed_at = now()
    """
)


def get_tile(
    conn: Connection, tileset: str, layers: list[Layer], tile: Tile, *, use_cache: bool = True
) -> TileResult:
    """The tile's MVT bytes, from the cache when it holds them, else rendered (and cached)."""
    if not use_cache or not cache_available(conn):
        data = render_tile(conn, layers, tile)
        return TileResult(data, etag_of(data), "off")

    row = conn.execute(
        text(
            "SELECT data, etag, extract(epoch FROM now() - accessed_at) FROM tile_cache "
            "WHERE tileset = :ts AND z = :z AND x = :x AND y = :y"
        ),
        {"ts": tileset, "z": tile.z, "x": tile.x, "y": tile.y},
    ).first()
    if row is not None:
        return TileResult(bytes(row[0]), row[1], "hit", float(row[2]))

    tables = sorted({layer.table for layer in layers})
    if not ensure_triggers(conn, tables):
        data = render_tile(conn, layers, tile)
        return TileResult(data, etag_of(data), "off")
    expr, params = tile_expr(layers, tile)
    snap, data = conn.execute(text(f"SELECT pg_current_snapshot()::text, {expr}"), params).one()
    data = bytes(data or b"")
    etag = etag_of(data)
    bx0, by0, bx1, by1 = envelope_lonlat(tile)
    conn.execute(
        _INSERT,
        {
            "ts": tileset,
            "z": tile.z,
            "x": tile.x,
            "y": tile.y,
            "tables": tables,
            "bx0": bx0,
            "by0": by0,
            "bx1": bx1,
            "by1": by1,
            "data": data,
            "etag": etag,
            "snap": snap,
        },
    )
    return TileResult(data, etag, "miss")


def clear_cache(conn: Connection, tileset: str | None = None) -> int:
    """Delete the cached tiles of one layer (or ``basemap``), or of all when None; returns tiles deleted."""
    if tileset is None:
        return conn.execute(text("DELETE FROM tile_cache")).rowcount
    # Cache keys are "<tileset>@<definition hash>".
    return conn.execute(
        text("DELETE FROM tile_cache WHERE split_part(tileset, '@', 1) = :ts"), {"ts": tileset}
    ).rowcount


def cache_stats(conn: Connection) -> list[tuple[str, int, int]]:
    """(tileset, tiles, bytes) per tileset."""
    rows = conn.execute(
        text(
            "SELECT tileset, count(*), coalesce(sum(nbytes), 0) FROM tile_cache "
            "GROUP BY tileset ORDER BY tileset"
        )
    ).all()
    return [(r[0], int(r[1]), int(r[2])) for r in rows]


@dataclass(frozen=True)
class TilesetUsage:
    """Cache use of one tileset: tiles, bytes and the range of last-access times."""

    tileset: str  # cache key "<layer or basemap>@<definition hash>"
    tiles: int
    bytes: int
    oldest_access: datetime
    newest_access: datetime


def cache_usage(conn: Connection) -> list[TilesetUsage]:
    """Tiles, bytes and access-time range per cached tileset (most bytes first)."""
    rows = conn.execute(
        text(
            "SELECT tileset, count(*), coalesce(sum(nbytes), 0), min(accessed_at), max(accessed_at) "
            "FROM tile_cache GROUP BY tileset ORDER BY 3 DESC, 1"
        )
    ).all()
    return [TilesetUsage(r[0], int(r[1]), int(r[2]), r[3], r[4]) for r in rows]


def cache_total(conn: Connection) -> tuple[int, int]:
    """(tiles, bytes) in the whole cache."""
    n, size = conn.execute(text("SELECT count(*), coalesce(sum(nbytes), 0) FROM tile_cache")).one()
    return int(n), int(size)


_EVICT = text(
    """
    WITH ranked AS (
        SELECT tileset, z, x, y,
               sum(nbytes) OVER (ORDER BY accessed_at DESC, created_at DESC, tileset, z, x, y
                                 ROWS UNBOUNDED PRECEDING) AS kept
        FROM tile_cache
    ), victim AS (
        SELECT c.tileset, c.z, c.x, c.y FROM tile_cache c
        JOIN ranked r USING (tileset, z, x, y)
        WHERE r.kept > :target
        FOR UPDATE OF c SKIP LOCKED
    ), gone AS (
        DELETE FROM tile_cache c USING victim v
        WHERE c.tileset = v.tileset AND c.z = v.z AND c.x = v.x AND c.y = v.y
        RETURNING c.nbytes
    )
    SELECT count(*), coalesce(sum(nbytes), 0) FROM gone
    """
)


def evict_lru(conn: Connection, target_bytes: int) -> tuple[int, int]:
    """Delete the least recently used tiles until the rest hold at most ``target_bytes``.

    One statement: tiles ranked by last access (newest first), a running sum of their sizes, every tile
    past ``target_bytes`` deleted. Rows locked by another transaction (an edit invalidating them, a
    render replacing them) are skipped. Returns (tiles, bytes) evicted.
    """
    n, size = conn.execute(_EVICT, {"target": max(0, int(target_bytes))}).one()
    return int(n), int(size)


def prune_older_than(conn: Connection, days: float) -> tuple[int, int]:
    """Delete tiles not served for ``days`` days. Returns (tiles, bytes) deleted."""
    n, size = conn.execute(
        text(
            "WITH gone AS (DELETE FROM tile_cache WHERE accessed_at < now() - make_interval(secs => :s) "
            "RETURNING nbytes) SELECT count(*), coalesce(sum(nbytes), 0) FROM gone"
        ),
        {"s": days * 86400.0},
    ).one()
    return int(n), int(size)


_TOUCH = text(
    """
    WITH k AS (
        SELECT * FROM unnest(CAST(:ts AS text[]), CAST(:z AS smallint[]), CAST(:x AS integer[]),
                             CAST(:y AS integer[])) AS k(tileset, z, x, y)
    ), locked AS (
        SELECT c.tileset, c.z, c.x, c.y FROM tile_cache c JOIN k USING (tileset, z, x, y)
        FOR UPDATE OF c SKIP LOCKED
    )
    UPDATE tile_cache c SET accessed_at = greatest(c.accessed_at, now())
    FROM locked l
    WHERE c.tileset = l.tileset AND c.z = l.z AND c.x = l.x AND c.y = l.y
    """
)


def touch_tiles(conn: Connection, keys: list[tuple[str, int, int, int]]) -> int:
    """Set the last-access time of these cached tiles to now, in one statement. Returns rows touched."""
    if not keys:
        return 0
    ts, zs, xs, ys = (list(col) for col in zip(*sorted(keys), strict=True))
    return conn.execute(_TOUCH, {"ts": ts, "z": zs, "x": xs, "y": ys}).rowcount


MB = 1024 * 1024
LOW_WATER = 0.9  # eviction brings the cache down to this share of the cap


class CacheKeeper:
    """Access-time bookkeeping and size cap of one database's tile cache, for one process.

    ``note()`` is called with every served tile (cheap, no I/O) and says whether upkeep is due;
    ``run()`` does it on its own connection and transaction: writes the queued access times in one
    statement and, when the cache may exceed the cap, measures it and evicts in one statement.

    The size is measured (a sum over ``nbytes``) when this process has stored 5 % of the cap since the
    last measurement, and at its first stored tile; eviction goes down to 90 % of the cap. So the cap
    is soft: between measurements each server process can add up to 5 % of it.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        max_bytes: int,
        touch_after_s: float = 600.0,
        batch: int = 256,
        flush_after_s: float = 30.0,
    ):
        self.engine = engine
        self.max_bytes = max(0, int(max_bytes))
        self.touch_after_s = max(0.0, float(touch_after_s))
        self.batch = batch
        self.flush_after_s = flush_after_s
        self._check_every = max(1, int(self.max_bytes * (1 - LOW_WATER) / 2))
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._pending: set[tuple[str, int, int, int]] = set()
        self._first_pending = 0.0
        self._unchecked = self._check_every  # measure at the first stored tile
        self.evicted_tiles = 0
        self.evicted_bytes = 0

    @classmethod
    def from_settings(cls, engine: Engine, settings) -> CacheKeeper:
        """A keeper with the cap and touch interval of the settings (``SHEQU_TILE_CACHE_*``)."""
        return cls(
            engine,
            max_bytes=int(settings.tile_cache_max_mb * MB),
            touch_after_s=settings.tile_cache_touch_minutes * 60.0,
        )

    def note(self, tileset: str, tile: Tile, result: TileResult) -> bool:
        """Record one served tile; True when :meth:`run` should be called (e.g. after the response)."""
        with self._lock:
            if result.cache == "hit" and result.age_s is not None and result.age_s >= self.touch_after_s:
                if not self._pending:
                    self._first_pending = time.monotonic()
                self._pending.add((tileset, tile.z, tile.x, tile.y))
            elif result.cache == "miss":
                self._unchecked += len(result.data)
            return self._due()

    def _due(self) -> bool:
        if self.max_bytes and self._unchecked >= self._check_every:
            return True
        return bool(self._pending) and (
            len(self._pending) >= self.batch or time.monotonic() - self._first_pending >= self.flush_after_s
        )

    def run(self, *, force: bool = False) -> tuple[int, int]:
        """Write queued access times; evict if over the cap. ``force``: flush and measure now.

        Never raises (it runs after the response): a failure is logged and the work is retried later.
        Returns (tiles, bytes) evicted by this call.
        """
        if not self._run_lock.acquire(blocking=force):
            return 0, 0  # another thread is at it
        try:
            with self._lock:
                keys = sorted(self._pending)
                self._pending = set()
                measure = bool(self.max_bytes) and (force or self._unchecked >= self._check_every)
                unchecked = self._unchecked
                if measure:
                    self._unchecked = 0
            try:
                evicted = (0, 0)
                with self.engine.begin() as conn:
                    touch_tiles(conn, keys)
                    if measure:
                        evicted = self._enforce(conn)
            except DBAPIError as exc:
                log.warning(
                    "tile cache upkeep failed, will retry: %s",
                    str(getattr(exc, "orig", exc)).strip().splitlines()[0],
                )
                with self._lock:
                    self._pending.update(keys)
                    if measure:
                        self._unchecked += unchecked
                return 0, 0
            self.evicted_tiles += evicted[0]
            self.evicted_bytes += evicted[1]
            return evicted
        finally:
            self._run_lock.release()

    def _enforce(self, conn: Connection) -> tuple[int, int]:
        # one evictor at a time across processes; the others skip (the cache is being shrunk anyway)
        if not conn.execute(
            text("SELECT pg_try_advisory_xact_lock(hashtext('shequ_tile_evict'))")
        ).scalar_one():
            return 0, 0
        _, size = cache_total(conn)
        if size <= self.max_bytes:
            return 0, 0
        n, freed = evict_lru(conn, int(self.max_bytes * LOW_WATER))
        log.info(
            "tile cache over its cap (%.1f MB > %.1f MB): evicted %d tiles, %.1f MB",
            size / MB,
            self.max_bytes / MB,
            n,
            freed / MB,
        )
        return n, freed
