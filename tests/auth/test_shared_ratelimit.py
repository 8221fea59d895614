"""Issue 15: an API key's rate limit holds across API worker processes (buckets in PostgreSQL, table
``rate_bucket``), not once per process: two apps on the same database — two worker processes' states,
each with its own limiter — share every key's bucket. Refills are checked by moving the bucket's stamp
back in the database, never by sleeping."""

from __future__ import annotations

import secrets

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from geo.errors import RateLimited
from gis_api.auth import store
from gis_api.auth.ratelimit import SharedRateLimiter
from gis_api.errors import status_and_code


def _age(engine, key: str, seconds: float) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE rate_bucket SET stamp = stamp - make_interval(secs => :s) WHERE key = :k"),
                     {"s": seconds, "k": key})


def test_two_limiters_share_one_bucket(engine):
    a, b = SharedRateLimiter(engine), SharedRateLimiter(engine)
    key = f"test:{secrets.token_hex(4)}"
    left = [(a if i % 2 else b).take(key, 5) for i in range(5)]
    assert [int(t) for t in left] == [4, 3, 2, 1, 0]  # (plus what the moments between the takes refilled)
    for lim in (a, b):
        with pytest.raises(RateLimited) as info:
            lim.take(key, 5)
        assert status_and_code(info.value)[0] == 429 and info.value.detail["limit_per_min"] == 5
        assert info.value.detail["retry_after_s"] >= 1
    b.take(f"{key}-other", 5)  # buckets are per key
    _age(engine, key, 12.0)  # 12 s at 5 a minute: one token back (and the moments the test took)
    assert 0 <= a.take(key, 5) < 0.5
    with pytest.raises(RateLimited):
        b.take(key, 5)
    a.take(key, 9)  # a changed limit starts a full bucket of the new size
    with engine.connect() as conn:
        row = conn.execute(text("SELECT rate_per_min, tokens FROM rate_bucket WHERE key = :k"), {"k": key}).one()
    assert row.rate_per_min == 9 and row.tokens == 8
    a.reset(key)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM rate_bucket WHERE key = :k"), {"k": key}).scalar_one() == 0


def test_idle_buckets_are_pruned(engine):
    lim = SharedRateLimiter(engine, prune_every=2)
    stale, fresh = f"test:{secrets.token_hex(4)}", f"test:{secrets.token_hex(4)}"
    lim.take(stale, 3)
    _age(engine, stale, SharedRateLimiter.IDLE_S + 5)  # full again by now: the row says nothing
    lim.take(fresh, 3)  # the second take prunes
    with engine.connect() as conn:
        keys = set(conn.execute(text("SELECT key FROM rate_bucket WHERE key IN (:a, :b)"),
                                {"a": stale, "b": fresh}).scalars())
    assert keys == {fresh}


def test_a_key_gets_its_limit_once_across_two_worker_apps(pg_url, engine):
    """Two apps (as two `shequ serve --workers 2` processes hold): 3 a minute in all, not 3 per worker."""
    from gis_api.app import create_app

    with engine.begin() as conn:
        row, plain = store.create_api_key(conn, f"t-shared-{secrets.token_hex(3)}", ["geocode"], "test", rate_per_min=3)
    headers = {"X-API-Key": plain}
    with TestClient(create_app(db_url=pg_url)) as w1, TestClient(create_app(db_url=pg_url)) as w2:
        answers = [w.get("/auth/me", headers=headers).status_code for w in (w1, w2, w1, w2, w1)]
        assert answers == [200, 200, 200, 429, 429]
        limited = w2.get("/auth/me", headers=headers)
        assert limited.status_code == 429 and limited.headers["retry-after"] and "3" in limited.json()["message"]
        _age(engine, f"key:{row['id']}", 20.5)  # one token back at 3 a minute
        assert w2.get("/auth/me", headers=headers).status_code == 200
        assert w1.get("/auth/me", headers=headers).status_code == 429
