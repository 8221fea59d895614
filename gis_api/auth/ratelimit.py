"""Per-key request rate limits: token buckets, shared by every API worker process (in PostgreSQL), or
in-process (tests, scripts; and the fallback when the database cannot be asked)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
                raise _limited(rate_per_min, b.tokens)
            b.tokens -= 1.0
            return b.tokens

    def reset(self, key: str | None = None) -> None:
        """Forget one key's bucket (or all)."""
        with self._lock:
            if key is None:
                self._buckets.clear()
            else:
                self._buckets.pop(key, None)


def _limited(rate_per_min: int, tokens: float) -> RateLimited:
    wait = math.ceil((1.0 - tokens) / (rate_per_min / 60.0))
    return RateLimited(
        f"请求过于频繁：每分钟最多 {rate_per_min} 次，请 {wait} 秒后再试 "
        f"too many requests: limit {rate_per_min} per minute, retry in {wait} s",
        detail={"limit_per_min": rate_per_min, "retry_after_s": wait},
    )


#: one atomic statement per request: refill by the time since the bucket's stamp (the database's clock, the
#: same for every worker), take a token when there is one; ``granted`` says whether it was taken. The row
#: lock serialises the workers' takes of one key.
_REFILLED = ("CASE WHEN b.rate_per_min <> EXCLUDED.rate_per_min THEN CAST(EXCLUDED.rate_per_min AS double precision) "
             "ELSE LEAST(CAST(EXCLUDED.rate_per_min AS double precision), b.tokens + CAST(extract(epoch FROM "
             "EXCLUDED.stamp - b.stamp) AS double precision) * EXCLUDED.rate_per_min / 60.0) END")
_TAKE = f"""
INSERT INTO rate_bucket AS b (key, rate_per_min, tokens, stamp, granted)
VALUES (:key, :rate, :rate - 1, clock_timestamp(), true)
ON CONFLICT (key) DO UPDATE SET
    tokens = CASE WHEN {_REFILLED} >= 1 THEN {_REFILLED} - 1 ELSE {_REFILLED} END,
    granted = {_REFILLED} >= 1, rate_per_min = EXCLUDED.rate_per_min, stamp = EXCLUDED.stamp
RETURNING b.tokens, b.granted
"""


class SharedRateLimiter:
    """Token buckets in PostgreSQL (table ``rate_bucket``, migration ``0018_shared_rate_limits``): the same
    limit whichever worker process serves the request (issue 15: in-process buckets gave N workers N times
    the limit). Same contract as :class:`RateLimiter`. When the database cannot be asked the limit is kept
    by this process's own buckets rather than failing the request."""

    #: a bucket untouched this long is full again, the same as no row: such rows are pruned
    IDLE_S = 120

    def __init__(self, engine: Any, prune_every: int = 1000):
        self.engine = engine
        self.local = RateLimiter()
        self._prune_every = prune_every
        self._takes = 0

    def take(self, key: str, rate_per_min: int) -> float:
        """Take one token or raise RateLimited (429, the limit in the message); the tokens left."""
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError
        from sqlalchemy.exc import TimeoutError as PoolTimeout

        self._takes += 1
        try:
            # autocommit: one round trip, and the bucket's row lock is held inside the statement only (in a
            # BEGIN … COMMIT it spanned a round trip, and every request of a busy key queued on it)
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                tokens, granted = conn.execute(text(_TAKE), {"key": key, "rate": int(rate_per_min)}).one()
                if self._takes % self._prune_every == 0:
                    conn.execute(text("DELETE FROM rate_bucket WHERE stamp < clock_timestamp() - make_interval(secs => :s)"),
                                 {"s": self.IDLE_S})
        except (DBAPIError, PoolTimeout):
            return self.local.take(key, rate_per_min)
        if not granted:
            raise _limited(rate_per_min, tokens)
        return float(tokens)

    def reset(self, key: str | None = None) -> None:
        """Forget one key's bucket (or all)."""
        from sqlalchemy import text

        self.local.reset(key)
        with self.engine.begin() as conn:
            conn.execute(text("DELETE FROM rate_bucket WHERE CAST(:k AS text) IS NULL OR key = :k"), {"k": key})


#: the process-wide limiter the API uses unless ``app.state.rate_limiter`` is set
default_limiter = RateLimiter()
