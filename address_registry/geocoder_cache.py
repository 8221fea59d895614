"""The geocoder of each database, kept in memory and rebuilt when the registry changed.

Built on the one cache idiom (`geo.cache.TtlCache`): at most every ``ttl_s`` seconds a reader checks the
registry's stamp (`store.stamp`, one small query) and rebuilds the index only when the stamp moved.
A write marks the cache stale itself (`mark_stale`, called by the mutating registry functions): the mark
takes effect when the writing transaction commits, so the next geocode after the commit checks again.

The app may build its cache explicitly (``open_cache(engine)``, e.g. in its lifespan); otherwise
``cache_for(engine)`` creates one on first use. Either way there is one cache per database URL.
"""

from __future__ import annotations

import threading
from typing import Any, NamedTuple

from sqlalchemy import event

from address_registry import store
from address_registry.geocoder import Geocoder
from geo.cache import TtlCache

DEFAULT_TTL_S = 2.0
_KEY = "geocoder"


class _Loaded(NamedTuple):
    stamp: Any
    geocoder: Geocoder


class GeocoderCache:
    """One Geocoder per database, rebuilt when the registry changed (checked at most every ``ttl_s``)."""

    def __init__(self, engine=None, ttl_s: float = DEFAULT_TTL_S):
        self.engine = engine
        self.ttl_s = ttl_s
        self._cache: TtlCache[_Loaded] = TtlCache(ttl_s)

    def get(self, engine=None) -> Geocoder:
        """The geocoder, after a stamp check when the last one is older than ``ttl_s`` (rebuilt if changed)."""
        return self._cache.get(
            _KEY, lambda: self._load(engine if engine is not None else self.engine)
        ).geocoder

    def _load(self, engine) -> _Loaded:
        last = self._cache.stale(_KEY)
        with engine.connect() as conn:
            st = store.stamp(conn)
            if last is not None and last.stamp == st:
                return last
            return _Loaded(st, Geocoder(**store.load_geocoder_inputs(conn), parser=free_text_parser()))

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
