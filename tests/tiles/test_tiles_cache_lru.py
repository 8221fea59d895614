"""Tile cache size cap on the real demo data: LRU eviction, access-time bookkeeping, `shequ tiles cache`."""

import json

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from gis_api.settings import Settings
from tiles.store import MB, CacheKeeper, cache_total
from tiles.tms import tiles_for_bbox

DEMO_BBOX = (121.4802, 31.2264, 121.5208, 31.2510)


def building_url(t) -> str:
    return f"/collections/building/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}"


@pytest.fixture
def keeper(app, engine):
    """Empty cache, and a keeper the test configures; the app's own keeper is put back afterwards."""
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM tile_cache"))
    saved = getattr(app.state, "tile_keeper", None)

    def install(**kw) -> CacheKeeper:
        app.state.tile_keeper = CacheKeeper(engine, **kw)
        return app.state.tile_keeper

    yield install
    app.state.tile_keeper = saved
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM tile_cache"))


def cached(engine) -> dict[tuple[int, int, int], tuple[int, object]]:
    """(z, x, y) -> (nbytes, accessed_at) of the cached building tiles."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT z, x, y, octet_length(data), nbytes, accessed_at FROM tile_cache "
                "WHERE tileset LIKE 'building@%'"
            )
        ).all()
    assert all(r[3] == r[4] for r in rows)  # the generated size column is the tile's size
    return {(r[0], r[1], r[2]): (r[3], r[5]) for r in rows}


def fill(client, tiles) -> dict:
    first = {}
    for t in tiles:
        r = client.get(building_url(t))
        assert r.status_code == 200 and r.headers["x-tile-cache"] == "miss"
        first[t] = r
    return first


def test_lru_eviction_keeps_recent_tiles_and_rerenders_identically(client, engine, keeper):
    tiles = [t for z in (15, 16) for t in tiles_for_bbox(DEMO_BBOX, z)]
    k = keeper(max_bytes=0, touch_after_s=0, batch=1)  # no cap; every hit refreshes its access time
    first = fill(client, tiles)
    assert k.evicted_tiles == 0
    sizes = cached(engine)
    assert set(sizes) == {(t.z, t.x, t.y) for t in tiles}
    total = sum(n for n, _ in sizes.values())
    with engine.connect() as conn:
        assert cache_total(conn) == (len(tiles), total)

    # Use the first-rendered (oldest) non-empty tiles again: they become the most recently used.
    recent = [t for t in tiles if sizes[(t.z, t.x, t.y)][0] > 0][:4]
    for t in recent:
        r = client.get(building_url(t))
        assert r.headers["x-tile-cache"] == "hit" and r.headers["etag"] == first[t].headers["etag"]
    after = cached(engine)
    newest_other = max(a for key, (_, a) in after.items() if key not in {(t.z, t.x, t.y) for t in recent})
    assert all(after[(t.z, t.x, t.y)][1] > newest_other for t in recent)

    recent_bytes = sum(sizes[(t.z, t.x, t.y)][0] for t in recent)
    cap = int((recent_bytes / 0.9 + total) / 2)  # recent tiles fit under the 90 % mark, the cache does not
    assert recent_bytes < 0.9 * cap < cap < total

    # A capped keeper measures at its first stored tile: a miss (a z14 tile) triggers the eviction,
    # which runs after the response.
    k = keeper(max_bytes=cap, touch_after_s=0, batch=1)
    extra = tiles_for_bbox(DEMO_BBOX, 14)[0]
    r = client.get(building_url(extra))
    assert r.status_code == 200 and r.headers["x-tile-cache"] == "miss"
    assert k.evicted_tiles > 0 and k.evicted_bytes > 0
    k.run(force=True)  # measure again, whatever the request's own tile: nothing more to evict
    with engine.connect() as conn:
        n_left, size_left = cache_total(conn)
    assert size_left <= cap
    left = cached(engine)
    assert all((t.z, t.x, t.y) in left for t in recent)  # the most recently used survive
    evicted = [t for t in tiles if (t.z, t.x, t.y) not in left]
    assert len(evicted) == k.evicted_tiles
    assert sum(sizes[(t.z, t.x, t.y)][0] for t in evicted) == k.evicted_bytes

    for t in recent:
        assert client.get(building_url(t)).headers["x-tile-cache"] == "hit"
    # Evicted tiles come back on the next request, byte for byte, with the same ETag (so clients'
    # If-None-Match still gets a 304).
    for t in evicted:
        r = client.get(building_url(t))
        assert r.headers["x-tile-cache"] == "miss"
        assert r.content == first[t].content and r.headers["etag"] == first[t].headers["etag"]
        assert r.headers["cache-control"] == "public, no-cache"
    t = evicted[0]
    assert client.get(building_url(t), headers={"If-None-Match": first[t].headers["etag"]}).status_code == 304


def test_access_time_is_refreshed_at_most_once_per_interval(client, engine, keeper):
    tiles = tiles_for_bbox(DEMO_BBOX, 16)[:3]
    keeper(max_bytes=0, touch_after_s=600, batch=1)
    fill(client, tiles)
    before = cached(engine)
    for t in tiles:  # served again at once: the stored time is recent enough, nothing is written
        assert client.get(building_url(t)).headers["x-tile-cache"] == "hit"
    assert cached(engine) == before

    k = keeper(max_bytes=0, touch_after_s=0, batch=len(tiles))  # refreshed in one batch of 3
    client.get(building_url(tiles[0]))
    client.get(building_url(tiles[1]))
    assert cached(engine) == before  # queued, not yet written
    client.get(building_url(tiles[2]))  # the batch is full: written after this response
    after = cached(engine)
    assert all(after[key][1] > before[key][1] for key in before)
    assert k.evicted_tiles == 0


def test_no_cap_means_no_eviction(client, engine, keeper):
    k = keeper(max_bytes=0, touch_after_s=600)
    tiles = tiles_for_bbox(DEMO_BBOX, 15)
    fill(client, tiles)
    assert k.run(force=True) == (0, 0)
    assert len(cached(engine)) == len(tiles)


def test_settings_from_the_environment(monkeypatch, engine):
    monkeypatch.setenv("SHEQU_TILE_CACHE_MAX_MB", "0.5")
    monkeypatch.setenv("SHEQU_TILE_CACHE_TOUCH_MINUTES", "2")
    k = CacheKeeper.from_settings(engine, Settings())
    assert k.max_bytes == MB // 2 and k.touch_after_s == 120
    assert Settings.model_fields["tile_cache_max_mb"].default > 0  # capped out of the box
    monkeypatch.setenv("SHEQU_TILE_CACHE_MAX_MB", "-1")
    with pytest.raises(ValueError):
        Settings()


def run_cli(*args):
    from gis_api.cli import app

    r = CliRunner().invoke(app, ["tiles", "cache", *args])
    return r


def test_cache_stats_match_the_table(client, engine, keeper):
    keeper(max_bytes=0)
    fill(client, tiles_for_bbox(DEMO_BBOX, 15))
    for t in tiles_for_bbox(DEMO_BBOX, 14):
        assert client.get(f"/tiles/basemap/{t.z}/{t.x}/{t.y}.mvt").status_code == 200
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT split_part(tileset, '@', 1), count(*), sum(octet_length(data)), "
                "min(accessed_at) FROM tile_cache GROUP BY 1"
            )
        ).all()
        oldest = conn.execute(text("SELECT min(accessed_at) FROM tile_cache")).scalar_one()
    expected = {r[0]: (r[1], r[2]) for r in rows}
    assert set(expected) == {"building", "basemap"}

    r = run_cli("stats", "--json")
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    assert {s["layer"]: (s["tiles"], s["bytes"]) for s in got["tilesets"]} == expected
    assert got["tiles"] == sum(n for n, _ in expected.values())
    assert got["bytes"] == sum(b for _, b in expected.values())
    assert got["oldest_access"] == oldest.isoformat()
    by_layer = {s["layer"]: s for s in got["tilesets"]}
    assert by_layer["basemap"]["oldest_access"] == next(r[3] for r in rows if r[0] == "basemap").isoformat()

    text_out = run_cli("stats").output
    assert f"合计 {got['tiles']} 个瓦片，{got['bytes']} 字节" in text_out
    for s in got["tilesets"]:
        assert s["tileset"] in text_out and f" {s['bytes']} " in text_out


def test_prune_older_than_and_max_mb(client, engine, keeper):
    keeper(max_bytes=0)
    tiles = [t for z in (15, 16) for t in tiles_for_bbox(DEMO_BBOX, z)]
    fill(client, tiles)
    old = tiles[: len(tiles) // 3]
    with engine.begin() as conn:  # as if these had not been viewed for three days
        for t in old:
            conn.execute(
                text(
                    "UPDATE tile_cache SET accessed_at = now() - interval '3 days' "
                    "WHERE tileset LIKE 'building@%' AND z = :z AND x = :x AND y = :y"
                ),
                {"z": t.z, "x": t.x, "y": t.y},
            )
    sizes = cached(engine)
    old_bytes = sum(sizes[(t.z, t.x, t.y)][0] for t in old)

    r = run_cli("prune", "--older-than", "2")
    assert r.exit_code == 0, r.output
    assert f"已清除 {len(old)} 个瓦片" in r.output and f"剩余 {len(tiles) - len(old)} 个瓦片" in r.output
    left = cached(engine)
    assert set(left) == {(t.z, t.x, t.y) for t in tiles[len(old) :]}
    with engine.connect() as conn:
        assert cache_total(conn) == (len(left), sum(n for n, _ in sizes.values()) - old_bytes)
    assert run_cli("prune", "--older-than", "2").output.count("已清除 0 个瓦片") == 1  # nothing older left

    # --max-mb: keep the most recently used tiles within the limit
    total = sum(n for n, _ in left.values())
    limit_mb = total / 2 / MB
    r = run_cli("prune", "--max-mb", f"{limit_mb:.6f}")
    assert r.exit_code == 0, r.output
    kept = cached(engine)
    assert 0 < len(kept) < len(left)
    assert sum(n for n, _ in kept.values()) <= limit_mb * MB
    assert min(a for _, a in kept.values()) >= max(a for key, (_, a) in left.items() if key not in kept)


def test_prune_bad_input(pg_url):
    for args in (
        ["prune", "--max-mb", "-1"],
        ["prune", "--older-than", "-3"],
        ["prune", "--older-than", "x"],
    ):
        r = run_cli(*args)
        assert r.exit_code != 0, (args, r.output)
    assert "错误" in run_cli("prune", "--max-mb", "-1").output
