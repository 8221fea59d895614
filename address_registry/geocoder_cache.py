"""The geocoder of each database, kept in memory and brought up to date when the registry changed.

Built on the one cache idiom (`geo.cache.TtlCache`): at most every ``ttl_s`` seconds a reader checks the
registry's stamp (`store.stamp`, one small query). When it moved, the rows written since the last look
(`store.changes_since`) are applied to the index in place (`Geocoder.update`, issue 14): a write is
visible to every process within ``ttl_s`` plus the delta's cost, without a whole rebuild. The index is
rebuilt whole only on the first load, when a row appeared behind the last one seen (a transaction that
took its id earlier committed later: the row count tells), or when the delta is large (a registry build).
A write marks the cache stale itself (`mark_stale`, called by the mutating registry functions): the mark
takes effect when the writing transaction commits, so the next geocode after the commit checks again.

With a snapshot folder (``snapshot_dir``: the app passes ``<data_dir>/geocoder``), a whole build is also
written there (`address_registry.geocoder_snapshot`), and the first load of a process that finds a valid
snapshot of its database reads it and applies the changes since its stamp as a delta instead of building:
the workers of ``shequ serve --workers N`` (and every restart) pay the build once. The file is written by a
forked child process while the build is already published: the child pickles the copy-on-write image of
the index as it was at the fork, so geocodes and deltas in this process go on meanwhile without reaching it
(`wait_for_snapshot` waits for it; a whole rebuild in this process meanwhile waits for the folder's lock,
which the child holds until the file is there). A whole load through
PostGIS streams lean records (`store.geocoder_rows`) and returns what it freed to the OS.

The app may build its cache explicitly (``open_cache(engine)``, e.g. in its lifespan); otherwise
``cache_for(engine)`` creates one on first use. Either way there is one cache per database URL.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import event

from address_registry import store
from address_registry.geocoder import Geocoder
from address_registry.geocoder_snapshot import (
    SnapshotStore,
    SnapshotWriter,
    database_key,
    gc_frozen,
    gc_paused,
)
from geo.cache import TtlCache

log = logging.getLogger(__name__)

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

    def __init__(self, engine=None, ttl_s: float = DEFAULT_TTL_S, snapshot_dir: Path | str | None = None):
        self.engine = engine
        self.ttl_s = ttl_s
        # where whole builds are written and read back (None: no snapshots)
        self.snapshot_dir = Path(snapshot_dir) if snapshot_dir is not None else None
        self._cache: TtlCache[_Loaded] = TtlCache(ttl_s)
        # what the last load did: kind (full / snapshot / delta / unchanged), seconds, changed addresses
        self.last_load: dict[str, Any] = {}
        self._update_lock = threading.Lock()
        # the last snapshot being written in the background (None: none started)
        self.snapshot_writer: SnapshotWriter | None = None
        # told of every delta applied to the loaded geocoder: ``changed(geocoder, records, removed)``
        # (the in-memory reverse index, address_registry.reverse_cache)
        self.followers: list[Any] = []
        self.reverse: Any = None  # its `ReverseCache`, once one is made (`reverse_cache.reverse_cache_for`)

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
            kind, changed, loaded, written_s, released = "full", 0, None, None, False
            if self.snapshot_dir is None:
                loaded = self._build(conn, st)
            else:
                snapshots = SnapshotStore(self.snapshot_dir, database_key(conn, engine.url))
                # workers read a snapshot side by side; only building one is done by one worker at a time
                got = self._from_snapshot(conn, snapshots, st) if last is None else None
                if got is None:
                    with snapshots.building():
                        if last is None and snapshots.path.exists():  # written while this one waited
                            got = self._from_snapshot(conn, snapshots, store.stamp(conn))
                        if got is None:
                            loaded = self._build(conn, st)
                            _release_freed_memory()  # before the fork: the writer's image without the garbage
                            released = True
                            t_write = time.perf_counter()
                            self._write_snapshot(snapshots, loaded)
                            written_s = time.perf_counter() - t_write
                if got is not None:
                    kind, (changed, loaded) = "snapshot", got
            assert loaded is not None
            self.last_load = {"kind": kind, "seconds": time.perf_counter() - t0,
                              "changed": changed if kind == "snapshot" else len(loaded.geocoder)}
            if written_s is not None:  # what starting the writer cost this load (the fork)
                self.last_load["snapshot_start_s"] = written_s
            if not released:
                _release_freed_memory()
            return loaded

    @staticmethod
    def _build(conn, st: tuple[int, int, int]) -> _Loaded:
        """A whole build from the registry in PostGIS. The free-text parser's model is loaded by a thread
        meanwhile (~3 s at start-up, while this thread mostly waits for the registry's rows); its error, if
        any, is raised here."""
        with ThreadPoolExecutor(1, thread_name_prefix="geocoder-parser") as pool:
            parser = pool.submit(free_text_parser)
            with gc_paused():  # millions of new records and dicts: no full collections meanwhile
                inputs = store.load_geocoder_inputs(conn)
                return _Loaded(st, Geocoder(**inputs, parser=parser.result()))

    def _from_snapshot(self, conn, snapshots: SnapshotStore, st: tuple[int, int, int]) -> tuple[int, _Loaded] | None:
        """(addresses changed since it, the snapshot brought up to ``st`` by a delta); None when there is
        none, it is not valid, or the changes since it need a whole rebuild."""
        snap = snapshots.read()
        if snap is None:
            return None
        if snap.stamp[0] > st[0] or snap.stamp[1] > st[1]:
            log.warning("geocoder snapshot %s is ahead of the registry (%s > %s); rebuilding", snapshots.path,
                        snap.stamp, st)
            return None
        snap.geocoder.parser = free_text_parser()
        changed = 0
        if snap.stamp != st:
            done = self._apply_delta(conn, _Loaded(snap.stamp, snap.geocoder), st)
            if done is None:
                return None
            changed = done
        return changed, _Loaded(st, snap.geocoder)

    def _write_snapshot(self, snapshots: SnapshotStore, loaded: _Loaded) -> None:
        """Start writing the new build for the next process, in a forked child (the build is published
        meanwhile: the child holds the image of the moment of the fork). Without `fork` it is written here,
        before the build is published. A failure (disk full, a folder of another user, no fork) is logged;
        this process serves its build anyway."""
        try:
            if hasattr(os, "fork"):
                self.snapshot_writer = snapshots.write_in_background(loaded.geocoder, loaded.stamp)
            else:
                snapshots.write(loaded.geocoder, loaded.stamp)
        except Exception:
            log.warning("geocoder snapshot %s not written", snapshots.path, exc_info=True)

    def wait_for_snapshot(self, timeout: float | None = None) -> bool:
        """Wait for the snapshot being written in the background; whether it was written (True when none
        was being written)."""
        writer = self.snapshot_writer
        if writer is None:
            return True
        return writer.wait(timeout) and writer.ok

    def _apply_delta(self, conn, last: _Loaded, st: tuple[int, int, int]) -> int | None:
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
        for follower in self.followers:
            follower.changed(geocoder, records, removed)
        return len(records) + len(removed)

    def catch_up(self, engine=None) -> bool:
        """Bring the loaded geocoder up to the registry by a delta only, never a whole rebuild (a forking
        server's parent before it forks a replacement worker: `gis_api.serving`). Whether it is now current;
        False when nothing is loaded yet or the changes need a whole rebuild (the geocoder is left as it was,
        and the next `get` after ``ttl_s`` decides again)."""
        if self._cache.stale(_KEY) is None:
            return False
        engine = engine if engine is not None else self.engine
        current = [False]

        def delta_only() -> _Loaded:
            last = self._cache.stale(_KEY)
            assert last is not None
            with engine.connect() as conn:
                st = store.stamp(conn)
                if last.stamp == st:
                    current[0] = True
                    return last
                with self._update_lock:
                    if self._apply_delta(conn, last, st) is None:
                        return last
            current[0] = True
            return _Loaded(st, last.geocoder)

        self._cache.invalidate(_KEY)
        self._cache.get(_KEY, delta_only)  # under the cache's loader lock, as `get`'s own loads
        if not current[0]:
            self._cache.invalidate(_KEY)  # not current: the next `get` checks again (and may rebuild)
        return current[0]

    def peek(self) -> Geocoder | None:
        """The cached geocoder while it needs no check (no I/O), else None."""
        hit = self._cache.peek(_KEY)
        return None if hit is None else hit.geocoder

    def invalidate(self) -> None:
        """Make the next ``get`` check the registry's stamp (the index is rebuilt only if it changed)."""
        self._cache.invalidate(_KEY)


def _release_freed_memory() -> None:
    """Collect, then hand the heap pages a whole load freed (its row batches, the old index) back to the OS:
    glibc keeps them otherwise, and the process's resident size stays at the load's peak.

    The objects alive now (the new index: millions of dicts, built with the collector paused, all still in
    its youngest generation) are frozen during the collection and then join the oldest generation: the
    collection looks at what is not frozen only (at 10⁶ addresses a full `gc.collect` after the build took
    0.9–2.7 s of the ready path and found 20 objects to free), and the next automatic young collection does
    not walk the whole index either."""
    with gc_frozen():
        gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


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


def open_cache(engine, ttl_s: float = DEFAULT_TTL_S, snapshot_dir: Path | str | None = None) -> GeocoderCache:
    """Build the geocoder cache of ``engine``'s database and make it the one `cache_for` returns."""
    cache = GeocoderCache(engine, ttl_s, snapshot_dir)
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
