"""Per-key request rate limits: an in-process token bucket per key, thread-safe."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from geo.errors import RateLimited


@dataclass
class _Bucket:
    rate_per_min: int
    tokens: float
    stamp: float


class RateLimiter:
    """Token buckets keyed by e.g. an API key id: ``rate_per_min`` tokens a minute, bursts up to that."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000):
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self._max_keys = max_keys

    def take(self, key: str, rate_per_min: int) -> float:
        """Take one token or raise RateLimited (429, the limit in the message); the tokens left."""
        now = self._clock()
        with self._lock:
            b = self._buckets.get(key)
            if b is None or b.rate_per_min != rate_per_min:
                if b is None and len(self._buckets) >= self._max_keys:
                    self._buckets.clear()  # a crude cap: forget everyone rather than grow without end
                b = self._buckets[key] = _Bucket(rate_per_min, float(rate_per_min), now)
            per_s = rate_per_min / 60.0
            b.tokens = min(float(rate_per_min), b.tokens + (now - b.stamp) * per_s)
            b.stamp = now
            if b.tokens < 1.0:
                wait = math.ceil((1.0 - b.tokens) / per_s)
                raise RateLimited(
                    f"请求过于频繁：每分钟最多 {rate_per_min} 次，请 {wait} 秒后再试 "
                    f"too many requests: limit {rate_per_min} per minute, retry in {wait} s",
                    detail={"limit_per_min": rate_per_min, "retry_after_s": wait},
                )
            b.tokens -= 1.0
            return b.tokens

    def reset(self, key: str | None = None) -> None:
        """Forget one key's bucket (or all)."""
        with self._lock:
            if key is None:
                self._buckets.clear()
            else:
                self._buckets.pop(key, None)


#: the process-wide limiter the API uses unless ``app.state.rate_limiter`` is set
default_limiter = RateLimiter()
