"""The one idiom for per-database, per-process caches: a value per key, recomputed after a time to live.

Used for the layer catalogue (which layers exist in this database), the tile cache's availability probe
and the geocoder (rebuilt when the registry's stamp changes). ``invalidate`` makes the next ``get`` check
again; the loader runs outside the lock's fast path so readers never wait on each other for a hit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class TtlCache(Generic[V]):
    """``get(key, load)``: the cached value while younger than ``ttl_s``, else ``load()`` (one loader at a time)."""

    def __init__(self, ttl_s: float):
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._items: dict[Hashable, tuple[float, V]] = {}

    def peek(self, key: Hashable) -> V | None:
        """The value while it is fresh (no loading, no I/O), else None."""
        hit = self._items.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.ttl_s:
            return hit[1]
        return None

    def stale(self, key: Hashable) -> V | None:
        """The last value stored under ``key``, however old (None if never loaded)."""
        hit = self._items.get(key)
        return None if hit is None else hit[1]

    def get(self, key: Hashable, load: Callable[[], V]) -> V:
        """The fresh value under ``key``, loading it (under the lock, once) when missing or expired."""
        value = self.peek(key)
        if value is not None:
            return value
        with self._lock:
            value = self.peek(key)
            if value is not None:
                return value
            value = load()
            self._items[key] = (time.monotonic(), value)
            return value

    def put(self, key: Hashable, value: V) -> None:
        """Store ``value`` as fresh."""
        with self._lock:
            self._items[key] = (time.monotonic(), value)

    def invalidate(self, key: Hashable | None = None) -> None:
        """Make ``key`` (or every key) expire now; the stale value stays readable through ``stale``."""
        with self._lock:
            keys = list(self._items) if key is None else [key]
            for k in keys:
                if k in self._items:
                    self._items[k] = (float("-inf"), self._items[k][1])

    def clear(self) -> None:
        """Forget every value (fresh or stale)."""
        with self._lock:
            self._items.clear()
