"""The geocoder of each database, kept in memory and brought up to date when the registry changed.

Built on the one cache idiom (`geo.cache.TtlCache`): at most every ``ttl_s`` seconds a reader checks the
registry's stamp (`store.stamp`, one small query). When it moved, the rows written since the last look
(`store.changes_since`) are applied to the index in place (`Geocoder.update`, issue 14): a write is
visible to every process within ``ttl_s`` plus the delta's cost, without a whole rebuild. The index is
rebuilt whole only on the first load, when a row appeared behind the last one seen (a transaction that
took its id earlier committed later: the row count tells), or when the delta is large (a registry build).
A write marks the cache stale itself (`mark_stale`, called by the mutating registry functions): the mark
takes effect when the writing transaction commits, so the next geocode after the commit checks again.

The app may build its cache explicitly (``open_cache(engine)``, e.g. in its lifespan); otherwise
``cache_for(engine)`` creates one on first use. Either way there is one cache per database URL.
"""

from __future__ import annotations

import threading
import time
from typing import Any, NamedTuple

from sqlalchemy import event

from address_registry import store
from address_registry.geocoder import Geocoder
from geo.cache import TtlCache

DEFAULT_TTL_S = 2.0
_KEY = "geocoder"
# a delta of more addresses than this (or than this share of the index) is applied by a whole rebuild
MAX_DELTA = 20_000
MAX_DELTA_SHARE = 0.2


class _Loaded(NamedTuple):
    stamp: Any
    geocoder: Geocoder


class GeocoderCache:
    """One Geocoder per database, rebuilt when the registry changed (checked at most every ``ttl_s``)."""

    def __init__(self, engine=None, ttl_s: float = DEFAULT_TTL_S):
        self.engine = engine
        self.ttl_s = ttl_s
        self._cache: TtlCache[_Loaded] = TtlCache(ttl_s)
        # what the last load did: kind (full / delta / unchanged), seconds, changed addresses
        self.last_load: dict[str, Any] = {}
        self._update_lock = threading.Lock()

    def get(self, engine=None) -> Geocoder:
        """The geocoder, after a stamp check when the last one is older than ``ttl_s`` (rebuilt if changed)."""
        return self._cache.get(
            _KEY, lambda: self._load(engine if engine is not None else self.engine)
        ).geocoder

    def _load(self, engine) -> _Loaded:
        last = self._cache.stale(_KEY)
        t0 = time.perf_counter()
        with engine.connect() as conn:
            st = store.stamp(conn)
            if last is not None and last.stamp == st:
                self.last_load = {"kind": "unchanged", "seconds": time.perf_counter() - t0, "changed": 0}
                return last
            if last is not None:
                with self._update_lock:
                    done = self._apply_delta(conn, last, st)
                if done is not None:
                    self.last_load = {"kind": "delta", "seconds": time.perf_counter() - t0, "changed": done}
                    return _Loaded(st, last.geocoder)
            loaded = _Loaded(st, Geocoder(**store.load_geocoder_inputs(conn), parser=free_text_parser()))
            self.last_load = {"kind": "full", "seconds": time.perf_counter() - t0, "changed": len(loaded.geocoder)}
            return loaded

    @staticmethod
    def _apply_delta(conn, last: _Loaded, st: tuple[int, int, int]) -> int | None:
        """Apply the rows written since ``last`` to its geocoder; None when a whole rebuild is needed."""
        last_id, last_alias, last_rows = last.stamp
        records, removed, newer = store.changes_since(conn, last_id)
        if last_rows + newer != st[2]:
            return None  # a row behind the last id seen, or rows deleted: the delta cannot tell
        geocoder = last.geocoder
        if len(records) + len(removed) > min(MAX_DELTA, MAX_DELTA_SHARE * max(len(geocoder), 1)):
            return None
        changed = [r.code for r in records if r.status == "active"]
        new_roads = {n for r in records if r.level == "road" and not geocoder.knows_road_lines(n := r.components.get("road", ""))}
        geocoder.update(
            records,
            removed,
            aliases=store.current_aliases(conn) if st[1] != last_alias else None,
            extents=store.footprint_extents(conn, changed) if changed else {},
            road_lines=store.road_lines_named(conn, {n for n in new_roads if n}),  # only roads it has not seen
        )
        return len(records) + len(removed)

    def peek(self) -> Geocoder | None:
        """The cached geocoder while it needs no check (no I/O), else None."""
        hit = self._cache.peek(_KEY)
        return None if hit is None else hit.geocoder

    def invalidate(self) -> None:
        """Make the next ``get`` check the registry's stamp (the index is rebuilt only if it changed)."""
        self._cache.invalidate(_KEY)


def free_text_parser():
    """address_registry.parsing.parse when its model is shipped here, else None (the geocoder then relies
    on its own matcher alone). Only a missing model or dependency is tolerated: a model that is there but
    fails raises."""
    try:
        from address_registry.parsing import parse

        parse("上海市黄浦区中山东一路3号")
    except (ImportError, FileNotFoundError):  # not shipped in this checkout: geocoding works without it
        return None
    return parse


_caches: dict[str, GeocoderCache] = {}
_caches_lock = threading.Lock()


def _db_key(engine) -> str:
    return str(engine.url)


def open_cache(engine, ttl_s: float = DEFAULT_TTL_S) -> GeocoderCache:
    """Build the geocoder cache of ``engine``'s database and make it the one `cache_for` returns."""
    cache = GeocoderCache(engine, ttl_s)
    with _caches_lock:
        _caches[_db_key(engine)] = cache
    return cache


def cache_for(engine) -> GeocoderCache:
    """The geocoder cache of ``engine``'s database (created on first use)."""
    cache = _caches.get(_db_key(engine))
    if cache is None:
        with _caches_lock:
            cache = _caches.setdefault(_db_key(engine), GeocoderCache(engine))
    return cache


def geocoder_for(engine) -> Geocoder:
    """The current geocoder of ``engine``'s database."""
    return cache_for(engine).get(engine)


def invalidate(engine) -> None:
    """Make the next geocode on ``engine``'s database check the registry's stamp."""
    cache = _caches.get(_db_key(engine))
    if cache is not None:
        cache.invalidate()


def _on_commit(conn) -> None:
    invalidate(conn.engine)


def mark_stale(conn) -> None:
    """Invalidate the geocoder of ``conn``'s database when ``conn``'s transaction commits (once per
    connection; a rollback leaves the cache alone). Called by every function that writes the registry."""
    if not event.contains(conn, "commit", _on_commit):
        event.listen(conn, "commit", _on_commit)
