"""The in-memory reverse index (`address_registry.reverse_index`) of a database, loaded and kept current.

It lives beside the geocoder, in the same `GeocoderCache` (issue 14): its address points and compounds are
the geocoder's records (`Geocoder.by_code`, the same objects: no second copy of the registry), and every
registry delta the cache applies to the geocoder (`GeocoderCache._apply_delta`, after the 2 s stamp check,
or at once in the writing process through `mark_stale`) is applied to the reverse index too
(`ReverseCache.changed`). A whole geocoder load (first load, snapshot, rebuild) rebuilds the points' tree.

The building footprints, admin polygons and current grids change rarely: they are reloaded whole when their
stamp (`store.reverse_layers.layer_stamp`, the log migration 0020 keeps by triggers) moved, checked at most
every ``ttl_s`` seconds — a building, boundary or grid edit is in the answers within ``ttl_s`` plus the
reload (tens of milliseconds at demo size).

A database without that log (not migrated) gets no index: `get` returns None and the route answers
through SQL (`address_registry.reverse.locate`), as it does when the app's settings turn the index off.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from address_registry.geocoder import Geocoder
from address_registry.geocoder_cache import DEFAULT_TTL_S, GeocoderCache
from address_registry.records import AddressRecord
from address_registry.reverse_index import (
    AdminRow,
    GridRow,
    PointIndex,
    PolygonLayer,
    ReverseIndex,
    compound_layer,
)
from address_registry.store import reverse_layers
from geo.cache import TtlCache

log = logging.getLogger(__name__)
_KEY = "layers"


class ReverseCache:
    """The reverse index of ``geocoders``' database; registers itself to receive the geocoder's deltas."""

    def __init__(self, geocoders: GeocoderCache, ttl_s: float = DEFAULT_TTL_S):
        self.geocoders = geocoders
        self.ttl_s = ttl_s
        self._checked: TtlCache[Any] = TtlCache(ttl_s)
        self._lock = threading.RLock()
        self._index: ReverseIndex | None = None
        self._geocoder: Geocoder | None = None
        self._layers: tuple[PolygonLayer, PolygonLayer, PolygonLayer] | None = None
        self._compounds: dict[str, AddressRecord] = {}
        self._inactive_sources: dict[str, str | None] = {}
        # what the last loads did: points (seconds, count), layers (seconds, stamp)
        self.last_load: dict[str, Any] = {}
        geocoders.followers.append(self)

    # -- reading ---------------------------------------------------------------------------------------
    def get(self) -> ReverseIndex | None:
        """The index, after the geocoder's stamp check and the layers' (each at most every ``ttl_s``);
        None when the database has no layer log."""
        geocoder = self.geocoders.get()
        stamp = self._checked.get(_KEY, self._load_layers)
        if stamp is None:
            return None
        with self._lock:
            if self._index is None or self._geocoder is not geocoder:
                self._load_points(geocoder)
            return self._index

    def peek(self) -> ReverseIndex | None:
        """The index while neither the geocoder nor the layers need a check (no I/O), else None."""
        geocoder = self.geocoders.peek()
        if geocoder is None or self._checked.peek(_KEY) is None:
            return None
        index = self._index
        if index is None or self._geocoder is not geocoder:
            return None
        return index

    def invalidate(self) -> None:
        """Make the next `get` check the layers' stamp (and the geocoder's)."""
        self._checked.invalidate(_KEY)
        self.geocoders.invalidate()

    # -- loading ---------------------------------------------------------------------------------------
    def _load_layers(self) -> Any:
        """The layers' stamp; the layers reloaded when it moved since the last look."""
        last = self._checked.stale(_KEY)
        engine = self.geocoders.engine
        t0 = time.perf_counter()
        with engine.connect() as conn:
            stamp = reverse_layers.layer_stamp(conn)
            if stamp is None:
                if last is None:
                    log.warning("no reverse_layer_change table (migration 0020): /reverse answers through SQL")
                return None
            if last is not None and last == stamp and self._layers is not None:
                return stamp
            buildings = reverse_layers.buildings(conn)
            admin = reverse_layers.admin_units(conn)
            grids = reverse_layers.current_grids(conn)
        layers = (PolygonLayer.of((g, bid) for bid, g in buildings),
                  PolygonLayer.of(((g, AdminRow(*rest)) for g, *rest in admin), prepare=True),
                  PolygonLayer.of(((g, GridRow(*rest)) for g, *rest in grids), prepare=True))
        with self._lock:
            self._layers = layers
            if self._index is not None:
                self._index.buildings, self._index.admin, self._index.grids = layers
        self.last_load["layers"] = {"seconds": round(time.perf_counter() - t0, 4), "stamp": stamp,
                                    "buildings": len(layers[0]), "admin": len(layers[1]), "grids": len(layers[2])}
        return stamp

    def _load_points(self, geocoder: Geocoder) -> None:
        """The points' tree and the compounds from the geocoder's records (under the lock)."""
        t0 = time.perf_counter()
        with self.geocoders.engine.connect() as conn:
            inactive = reverse_layers.inactive_parent_sources(conn)
        records = list(geocoder.by_code.values())
        points = PointIndex(records)
        self._compounds = {r.code: r for r in records if r.level == "compound" and r.area is not None}
        self._inactive_sources = inactive
        assert self._layers is not None
        buildings, admin, grids = self._layers
        self._index = ReverseIndex(points, buildings, admin, grids, compound_layer(self._compounds.values()),
                                   self._parent_source_of(geocoder))
        self._geocoder = geocoder
        self.last_load["points"] = {"seconds": round(time.perf_counter() - t0, 4), "points": len(points),
                                    "compounds": len(self._compounds)}

    def _parent_source_of(self, geocoder: Geocoder):
        by_code = geocoder.by_code
        inactive = self._inactive_sources

        def parent_source(code: str) -> str | None:
            rec = by_code.get(code)
            return rec.source if rec is not None else inactive.get(code)

        return parent_source

    # -- the geocoder's deltas -------------------------------------------------------------------------
    def changed(self, geocoder: Geocoder, records: Iterable[AddressRecord], removed: Iterable[str]) -> None:
        """Apply a registry delta the geocoder cache has just applied to ``geocoder`` (a delta to another
        geocoder — a snapshot being brought up to date — is left to the whole load that follows)."""
        with self._lock:
            index = self._index
            if index is None or geocoder is not self._geocoder:
                return
            try:
                self._apply(index, list(records), list(removed))
            except Exception:  # never the geocoder's delta's failure: this index is rebuilt on the next `get`
                log.warning("reverse index delta failed; rebuilt on the next question", exc_info=True)
                self._index = None

    def _apply(self, index: ReverseIndex, records: list[AddressRecord], removed: list[str]) -> None:
        index.points.apply(records, removed)
        for code in removed:
            self._inactive_sources.pop(code, None)
        for rec in records:
            if rec.status == "active":
                self._inactive_sources.pop(rec.code, None)
            else:
                self._inactive_sources[rec.code] = rec.source
        touched = set(removed) | {r.code for r in records}
        if any(c in self._compounds for c in touched) or any(r.level == "compound" for r in records):
            for code in touched:
                self._compounds.pop(code, None)
            self._compounds.update((r.code, r) for r in records
                                   if r.level == "compound" and r.status == "active" and r.area is not None)
            index.compounds = compound_layer(self._compounds.values())


_caches_lock = threading.Lock()


def reverse_cache_for(geocoders: GeocoderCache) -> ReverseCache:
    """The reverse cache riding on ``geocoders`` (created on first use)."""
    with _caches_lock:
        cache = getattr(geocoders, "reverse", None)
        if cache is None:
            cache = geocoders.reverse = ReverseCache(geocoders)
        return cache
