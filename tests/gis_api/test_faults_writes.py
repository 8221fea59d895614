"""Issue 15, faults: `kill -9` of the API process (a real `shequ serve`, uvicorn, child process) and of
PostgreSQL's postmaster in the middle of a grid edit apply, a siting scenario save and a tile render.

Each runs on a throw-away embedded cluster holding a copy of the session's demo database (`shequ db backup`
→ `restore`, so the session's cluster is never touched). "The middle" is reached without timing and without
a hook in the product, by holding from the test a lock that the write takes **after** it has written:

- grid edit (`POST /grid-edits/apply`): the test holds the audit chain's advisory lock
  (`gis_api.auth.audit.AUDIT_LOCK`); the audited route has written the draft, the new grid versions and the
  assignments, and waits for the lock to append its audit entry, before its commit;
- siting save (`POST /analysis/scenarios`): the test inserts, uncommitted, the row version 1 of the same
  scenario name; the save has solved the scenario and written its row, and waits on the unique index for the
  test's transaction;
- tile render (`GET /collections/grid/tiles/…`): the test holds `LOCK TABLE tile_cache IN EXCLUSIVE MODE`;
  the render has drawn the tile and waits to store it.

The kill lands when pg_stat_activity shows that backend waiting on that lock (with a transaction id: it has
written, for the first two). After the restart: nothing of the interrupted write is visible, the grid
hierarchy validates as before (`grid_builder.service.validate_stored`: coverage, overlaps, nesting,
buildings), every grid and standard-address code has versions 1..n with one current, the audit chain verifies,
every cached tile is byte for byte a fresh render, and the API answers without a manual step — after a
`kill -9` of PostgreSQL the *same* API process, after a `kill -9` of the API a new one on the same port. A
control run of each write, uninterrupted, then commits (the interrupted request was a valid one)."""

from __future__ import annotations

import os
import secrets
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_api.auth import audit
from gis_api.db import get_engine
from tests.faultkit import (
    ApiProcess,
    alive,
    backends,
    counts,
    kill_postmaster,
    roads_csv,
    server_pids,
    throwaway_cluster,
    version_breaks,
    wait_until,
)

COUNTED = ("grid", "grid_edit", "grid_assignment", "standard_address", "siting_scenario", "audit_log")
TILE_ZOOMS = (14, 15, 16, 17)


@pytest.fixture(scope="module")
def world(pg_url, jurisdictions, admin_headers, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """A throw-away cluster with a copy of the session's demo database (grids built, the admin account), and
    a running API process on it."""
    from gis_api import backup
    from grid_builder.edit.service import load_layout

    dump = tmp_path_factory.mktemp("faults") / "demo.dump"
    backup.backup(pg_url, dump)
    with throwaway_cluster("shequ-faults-w-") as cluster:
        backup.restore(cluster.url(), dump)
        engine = get_engine(cluster.url())
        # a commit is acknowledged only once its WAL is written, as in production (the test clusters turn it
        # off for speed); fsync may stay off: a kill -9 of processes leaves the OS's page cache intact
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ALTER SYSTEM SET synchronous_commit = on"))
            conn.execute(text("SELECT pg_reload_conf()"))
        community = jurisdictions["community"]
        with engine.connect() as conn:
            _info, layout, _v = load_layout(conn, community)
        api = ApiProcess(cluster.url()).start()
        w = {"cluster": cluster, "engine": engine, "community": community, "layout": layout,
             "headers": admin_headers, "api": api}
        try:
            yield w
        finally:
            w["api"].stop()


def _restart_api(world: dict[str, Any]) -> None:
    """A new API process on the same port as the killed one (a restart by the service manager)."""
    old = world["api"]
    world["api"] = ApiProcess(old.db_url, old.port).start()


def _fire(method: str, url: str, **kw: Any) -> dict[str, Any]:
    """Send a request from a thread; ``out["response"]`` or ``out["error"]`` once it is done."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["response"] = httpx.request(method, url, timeout=180, **kw)
        except httpx.HTTPError as exc:
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    out["thread"] = t
    return out


def _grid_tiles(lon: float, lat: float) -> list[str]:
    from tiles.tms import tile_for_lonlat

    return [f"/collections/grid/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}"
            for t in (tile_for_lonlat(lon, lat, z) for z in TILE_ZOOMS)]


def _cached_etags(engine, urls: list[str]) -> dict[str, str]:
    """The ETags the tile cache holds for these grid tile URLs (absent: not cached)."""
    out = {}
    with engine.connect() as conn:
        for u in urls:
            z, x, y = (int(v) for v in u.rsplit("/", 3)[1:])
            etag = conn.execute(text("SELECT etag FROM tile_cache WHERE tileset LIKE 'grid@%' AND z = :z AND x = :x "
                                     "AND y = :y"), {"z": z, "x": x, "y": y}).scalar()
            if etag is not None:
                out[u] = etag
    return out


def _fresh_etags(db_url: str, urls: list[str]) -> dict[str, str]:
    """ETags of the same tiles rendered now from the tables, bypassing the cache."""
    from gis_api.app import create_app

    app = create_app(db_url=db_url)
    app.state.tile_cache = False
    with TestClient(app) as client:
        out = {}
        for u in urls:
            r = client.get(u)
            assert r.status_code == 200 and r.headers["X-Tile-Cache"] == "off", r.text
            out[u] = r.headers["ETag"]
    return out


def _assert_no_stale_tile(world: dict[str, Any], urls: list[str]) -> None:
    cached = _cached_etags(world["engine"], urls)
    fresh = _fresh_etags(world["cluster"].url(), list(cached))
    assert cached == fresh, "a cached tile differs from a fresh render (stale)"


def _snapshot(world: dict[str, Any]) -> dict[str, Any]:
    from grid_builder.service import validate_stored

    engine = world["engine"]
    with engine.connect() as conn:
        grids = dict(conn.execute(text("SELECT code, version FROM grid WHERE valid_to IS NULL AND level = 'grid' "
                                  "AND community_code = :c"),
                                  {"c": world["community"]}).all())
    return {"counts": counts(engine, COUNTED), "grids": grids,
            "issues": sorted((i["kind"], tuple(i["codes"])) for i in validate_stored(engine, world["community"]))}


def _assert_invariants(world: dict[str, Any], before: dict[str, Any]) -> None:
    """Nothing of the interrupted write, and every invariant as before the fault."""
    engine = world["engine"]
    engine.dispose()  # connections of a killed server are dead (the pool would find out by itself too)
    assert _snapshot(world) == before
    with engine.connect() as conn:
        assert version_breaks(conn, "grid") == []
        assert version_breaks(conn, "standard_address") == []
        assert audit.verify(conn) is None


def _api_answers(world: dict[str, Any]) -> None:
    """The running API serves reads (a grid located in the community) — no manual step after a fault."""
    api = world["api"]

    def healthy() -> bool:
        try:
            return httpx.get(f"{api.base}/health", timeout=5).json()["status"] == "ok"
        except (httpx.HTTPError, ValueError, KeyError):
            return False

    wait_until(healthy, "/health ok again", 60)
    c = world["layout"].community.representative_point()
    from grid_builder.geom import to_wgs84

    p = to_wgs84(c)
    found = httpx.get(f"{api.base}/grids/locate", params={"lon": p.x, "lat": p.y}, timeout=30)
    assert found.status_code == 200, found.text
    assert found.json()["grid"]["community_code"] == world["community"]


def _blocked(world: dict[str, Any], where: str, call: dict[str, Any]) -> tuple[int, list[int]]:
    """Wait until a backend matches ``where`` (the write waiting on the test's lock): its pid, every server pid."""
    found: list[int] = []

    def waiting() -> bool:
        assert call["thread"].is_alive(), call.get("response", call.get("error"))
        found[:] = backends(world["engine"], where)
        return bool(found)

    wait_until(waiting, f"a backend with {where}", 120)
    assert len(found) == 1, found
    return found[0], server_pids(world["engine"])


def _wrote(world: dict[str, Any], pid: int) -> set[str]:
    """The tables the backend ``pid`` has opened for writing in its open transaction (RowExclusiveLock)."""
    with world["engine"].connect() as conn:
        return set(conn.execute(text(
            "SELECT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE l.pid = :p "
            "AND l.mode = 'RowExclusiveLock' AND l.granted AND c.relkind = 'r'"), {"p": pid}).scalars())


def _kill(world: dict[str, Any], target: str, pids: list[int], call: dict[str, Any]) -> None:
    """``kill -9`` of ``target`` (api | postgres), then restart it; checks what the caller got."""
    cluster = world["cluster"]
    if target == "postgres":
        kill_postmaster(cluster, pids)
        call["thread"].join(60)
        resp = call.get("response")
        # the API is still up: the interrupted request is a 503 in the error body, not a 500 nor a hang
        assert resp is not None and resp.status_code == 503, call
        assert resp.json()["error"] == "database_unavailable" and resp.headers.get("Retry-After")
        cluster.start()  # crash recovery on its own files
    else:
        world["api"].kill9()
        call["thread"].join(60)
        assert "error" in call, call  # the connection died with the process
        _restart_api(world)


def _release(conn) -> None:
    """End the test's blocking transaction / lock (a connection of a killed server is simply dropped)."""
    try:
        conn.rollback()
        conn.execute(text("SELECT pg_advisory_unlock_all()"))
        conn.close()
    except Exception:  # noqa: BLE001 — the server that held it was killed: nothing is held any more
        conn.invalidate()


ADVISORY_WAIT = "backend_xid IS NOT NULL AND wait_event_type = 'Lock' AND wait_event = 'advisory'"


@contextmanager
def _held_by_audit_lock(world: dict[str, Any], method: str, url: str,
                        **kw: Any) -> Iterator[tuple[dict[str, Any], int, list[int]]]:
    """Send the request while the test holds the audit chain's advisory lock (``audit.AUDIT_LOCK``): the audited
    route writes its rows, then waits for the lock in its open transaction. Yields ``(call, pid, pids)`` once it
    waits there (the backend writing, and the server's pids); the lock is let go on leaving the block."""
    holder = world["engine"].connect()
    holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": audit.AUDIT_LOCK})
    holder.commit()
    try:
        call = _fire(method, url, **kw)
        pid, pids = _blocked(world, ADVISORY_WAIT, call)
        yield call, pid, pids
    finally:
        _release(holder)


def _wait_quiet(world: dict[str, Any]) -> None:
    """Wait until no backend holds a transaction that wrote (the orphan of a killed API rolled back)."""
    wait_until(lambda: not backends(world["engine"], "backend_xid IS NOT NULL"), "the orphaned write's rollback")


TARGETS = ["postgres", "api"]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("target", TARGETS)
def test_kill_9_mid_grid_edit_apply(world, target):
    from grid_builder.edit.samples import movable_vertex

    engine, api = world["engine"], world["api"]
    src, dst, a, b = movable_vertex(world["layout"])
    ops = [{"op": "move_vertex", "from": src, "to": dst}]
    tiles = _grid_tiles(*src)
    for u in tiles:  # cached before the edit: the edit's triggers delete them inside its transaction
        assert httpx.get(f"{api.base}{u}", timeout=60).status_code == 200
    assert set(_cached_etags(engine, tiles)) == set(tiles)
    before = _snapshot(world)
    body = {"community_code": world["community"], "operations": ops, "reason": f"故障测试 {target}"}

    with _held_by_audit_lock(world, "POST", f"{api.base}/grid-edits/apply", json=body,
                             headers=world["headers"]) as (call, pid, pids):
        # mid-write: the draft, the new grid versions and the assignments written, not committed
        assert {"grid_edit", "grid", "grid_assignment", "tile_cache"} <= _wrote(world, pid)
        _kill(world, target, pids, call)
    _wait_quiet(world)
    _assert_invariants(world, before)
    assert set(_cached_etags(engine, tiles)) == set(tiles)  # the edit's tile deletions rolled back with it
    _assert_no_stale_tile(world, tiles)
    _api_answers(world)

    # the control: the same edit, uninterrupted, is applied (new versions) and the tiles it changed let go
    api = world["api"]
    done = httpx.post(f"{api.base}/grid-edits/apply", json=body, headers=world["headers"], timeout=120)
    assert done.status_code == 201, done.text
    after = _snapshot(world)
    assert after["grids"] == {**before["grids"], a: before["grids"][a] + 1, b: before["grids"][b] + 1}
    assert after["issues"] == before["issues"]
    assert after["counts"]["audit_log"] == before["counts"]["audit_log"] + 1
    assert len(_cached_etags(engine, tiles)) < len(tiles)
    for u in tiles:
        assert httpx.get(f"{api.base}{u}", timeout=60).status_code == 200
    _assert_no_stale_tile(world, tiles)
    # the layout the next test starts from
    with engine.connect() as conn:
        from grid_builder.edit.service import load_layout

        world["layout"] = load_layout(conn, world["community"])[1]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("target", TARGETS)
def test_kill_9_mid_siting_scenario_save(world, target):
    engine, api = world["engine"], world["api"]
    name = f"故障测试方案-{target}-{secrets.token_hex(3)}"
    body = {"name": name, "area_code": world["community"], "facility_type": "幼儿园", "model": "mclp",
            "distance": "line", "new_sites": 1}
    before = _snapshot(world)

    holder = engine.connect()
    holder.execute(text(
        "INSERT INTO siting_scenario (name, version, area_code, params, summary, sites, created_by) "
        "VALUES (:n, 1, :a, '{}', '{}', '{}', 'fault-test')"), {"n": name, "a": world["community"]})
    try:
        call = _fire("POST", f"{api.base}/analysis/scenarios", json=body, headers=world["headers"])
        # solved, its row written, waiting on the unique index for the test's uncommitted version 1
        pid, pids = _blocked(world, "backend_xid IS NOT NULL AND wait_event_type = 'Lock' "
                                    "AND wait_event = 'transactionid'", call)
        assert "siting_scenario" in _wrote(world, pid)
        _kill(world, target, pids, call)
    finally:
        _release(holder)
    _wait_quiet(world)
    _assert_invariants(world, before)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM siting_scenario WHERE name = :n"), {"n": name}).scalar() == 0
    _api_answers(world)

    api = world["api"]
    done = httpx.post(f"{api.base}/analysis/scenarios", json=body, headers=world["headers"], timeout=180)
    assert done.status_code == 201, done.text
    assert done.json()["scenario"]["version"] == 1  # nothing of the interrupted save took a version
    assert counts(engine, ("siting_scenario",))["siting_scenario"] == before["counts"]["siting_scenario"] + 1


@pytest.mark.timeout(300)
@pytest.mark.parametrize("target", TARGETS)
def test_kill_9_mid_tile_render(world, target):
    engine, api = world["engine"], world["api"]
    c = world["layout"].community.centroid
    from grid_builder.geom import to_wgs84

    p = to_wgs84(c)
    tiles = _grid_tiles(p.x, p.y)
    url = tiles[-1]
    z, x, y = (int(v) for v in url.rsplit("/", 3)[1:])
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM tile_cache WHERE z = :z AND x = :x AND y = :y"), {"z": z, "x": x, "y": y})
    before = _snapshot(world)

    holder = engine.connect()
    holder.execute(text("LOCK TABLE tile_cache IN EXCLUSIVE MODE"))
    try:
        call = _fire("GET", f"{api.base}{url}", headers=world["headers"])
        # drawn, waiting to store the tile
        _pid, pids = _blocked(world, "wait_event_type = 'Lock' AND wait_event = 'relation' "
                                     "AND query LIKE '%INSERT INTO tile_cache%'", call)
        _kill(world, target, pids, call)
    finally:
        _release(holder)
    _wait_quiet(world)
    _assert_invariants(world, before)
    assert url not in _cached_etags(engine, [url])  # no partial tile stored
    _api_answers(world)

    api = world["api"]
    first = httpx.get(f"{api.base}{url}", timeout=60)
    assert first.status_code == 200 and first.headers["X-Tile-Cache"] == "miss"
    again = httpx.get(f"{api.base}{url}", timeout=60)
    assert again.headers["X-Tile-Cache"] == "hit" and again.headers["ETag"] == first.headers["ETag"]
    _assert_no_stale_tile(world, tiles)


def test_the_version_check_can_fail(engine):
    """`version_breaks` reports a code with two current versions, a gap and a current row that is not the
    newest (on a temp table shaped like `grid`), and nothing for a clean chain."""
    with engine.connect() as conn:
        conn.execute(text("CREATE TEMP TABLE vb (code text, version int, valid_to timestamptz)"))
        conn.execute(text(
            "INSERT INTO vb VALUES ('ok', 1, now()), ('ok', 2, NULL), ('two', 1, NULL), ('two', 2, NULL), "
            "('gap', 1, now()), ('gap', 3, NULL), ('old', 1, NULL), ('old', 2, now()), ('none', 1, now())"))
        assert sorted(version_breaks(conn, "vb")) == ["gap", "old", "two"]
        conn.rollback()


def _children(pid: int) -> list[int]:
    """The child processes of ``pid`` (the API's job workers), from /proc."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return out


def _job_state(world: dict[str, Any], job_id: int, states: tuple[str, ...]) -> dict[str, Any]:
    """Poll the job's status until it is one of ``states``; its last status."""
    last: dict[str, Any] = {}

    def ended() -> bool:
        r = httpx.get(f"{world['api'].base}/analysis/jobs/{job_id}", headers=world["headers"], timeout=30)
        assert r.status_code == 200, r.text
        last.update(r.json())
        return last["state"] in states

    wait_until(ended, f"job {job_id} to reach {states}", 180)
    return last


@pytest.mark.timeout(400)
@pytest.mark.parametrize("target", TARGETS)
def test_kill_9_mid_scenario_job_then_jobs_run_again(world, target):
    """A scenario saved by a job (the planner workbench's 运行方案): killed while its worker process has
    written the scenario row, uncommitted. The job ends failed, nothing is saved, the worker processes of a
    killed API do not linger, and a new job — in the same API after a database crash — runs and saves."""
    engine = world["engine"]
    name = f"故障任务方案-{target}-{secrets.token_hex(3)}"
    params = {"name": name, "area_code": world["community"], "facility_type": "幼儿园", "model": "mclp",
              "distance": "line", "new_sites": 1}
    before = _snapshot(world)
    holder = engine.connect()
    holder.execute(text(
        "INSERT INTO siting_scenario (name, version, area_code, params, summary, sites, created_by) "
        "VALUES (:n, 1, :a, '{}', '{}', '{}', 'fault-test')"), {"n": name, "a": world["community"]})
    workers: list[int] = []
    try:
        sub = httpx.post(f"{world['api'].base}/analysis/jobs", json={"kind": "scenario", "params": params},
                         headers=world["headers"], timeout=60)
        assert sub.status_code == 202, sub.text
        job_id = sub.json()["id"]
        # the worker process: solved, its scenario row written, waiting on the test's uncommitted version 1
        found: list[int] = []
        wait_until(lambda: bool(found.extend(backends(engine, "backend_xid IS NOT NULL AND wait_event_type = "
                                                              "'Lock' AND wait_event = 'transactionid'")) or found),
                   "the job's worker to wait on the scenario row", 180)
        assert "siting_scenario" in _wrote(world, found[0])
        if target == "postgres":
            kill_postmaster(world["cluster"], server_pids(engine))
            world["cluster"].start()
        else:
            workers = _children(world["api"].proc.pid)
            assert workers, "the API has job worker processes"
            world["api"].kill9()
            _restart_api(world)
            # the new API finds the job's runner gone (its lock was freed with the killed process's
            # connections) while the orphaned worker still waits: failed, before the worker can finish
            job = _job_state(world, job_id, ("failed", "done", "cancelled"))
            assert job["state"] == "failed" and "重启" in job["message"], job
    finally:
        _release(holder)
    _wait_quiet(world)  # the orphaned worker (api) found its job failed and rolled its save back
    job = _job_state(world, job_id, ("failed", "done", "cancelled"))
    assert job["state"] == "failed", job
    wait_until(lambda: not any(alive(p) for p in workers), "the killed API's job workers to exit", 60)
    _assert_invariants(world, before)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM siting_scenario WHERE name = :n"), {"n": name}).scalar() == 0

    # a new job in the running API (the same process after a database crash) runs and saves
    again = httpx.post(f"{world['api'].base}/analysis/jobs", json={"kind": "scenario", "params": params},
                       headers=world["headers"], timeout=60)
    assert again.status_code == 202, again.text
    done = _job_state(world, again.json()["id"], ("failed", "done", "cancelled"))
    assert done["state"] == "done", done
    with engine.connect() as conn:  # the runner holds its liveness lock again (after a database crash too)
        key = conn.execute(text("SELECT runner_key FROM analysis_job WHERE id = :i"), {"i": again.json()["id"]}
                           ).scalar_one()
        assert conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key}).scalar_one() is False
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version FROM siting_scenario WHERE name = :n"), {"n": name}
                            ).scalars().all() == [1]


def _worker_holding(api: ApiProcess, client_port: int) -> int:
    """The pid of the API worker process whose database connection has the local port ``client_port``."""
    import psutil

    assert api.proc is not None
    for proc in psutil.Process(api.proc.pid).children(recursive=True):
        try:
            if any(c.laddr and c.laddr.port == client_port for c in proc.net_connections(kind="tcp")):
                return proc.pid
        except psutil.Error:
            continue
    raise AssertionError(f"no API worker holds the database connection from port {client_port}")


def _server_workers(api: ApiProcess) -> set[int]:
    """Pids of the server's live worker processes (the arbiter's direct children listening on the port)."""
    import psutil

    assert api.proc is not None
    out = set()
    for proc in psutil.Process(api.proc.pid).children():
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and any(
                    c.laddr and c.laddr.port == api.port and c.status == psutil.CONN_LISTEN
                    for c in proc.net_connections(kind="tcp")):
                out.add(proc.pid)
        except psutil.Error:
            continue
    return out


def _gone(pid: int) -> bool:
    """Whether ``pid`` has died (a zombie not yet reaped by its parent counts as dead)."""
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.timeout(300)
def test_kill_9_of_one_worker_of_several_mid_grid_edit(world):
    """`shequ serve --workers 2`: the worker writing a grid edit is killed (``kill -9``) in the middle of it,
    held by the audit chain's lock with its rows written. The other worker keeps serving while it is gone,
    the server's arbiter forks a new one, and the killed worker's edit is all or nothing: nothing of it."""
    from grid_builder.edit.samples import movable_vertex

    engine = world["engine"]
    api = ApiProcess(world["api"].db_url, workers=2).start()
    try:
        wait_until(lambda: len(_server_workers(api)) == 2, "two API workers")
        src, dst, a, b = movable_vertex(world["layout"])
        body = {"community_code": world["community"], "operations": [{"op": "move_vertex", "from": src, "to": dst}],
                "reason": "故障测试 多进程"}
        before = _snapshot(world)
        with _held_by_audit_lock(world, "POST", f"{api.base}/grid-edits/apply", json=body,
                                 headers=world["headers"]) as (call, pid, _pids):
            assert {"grid_edit", "grid", "grid_assignment"} <= _wrote(world, pid)
            with engine.connect() as conn:
                port = conn.execute(text("SELECT client_port FROM pg_stat_activity WHERE pid = :p"),
                                    {"p": pid}).scalar_one()
            victim = _worker_holding(api, port)
            assert victim in _server_workers(api)
            os.kill(victim, signal.SIGKILL)
            wait_until(lambda: _gone(victim), "the killed worker to die")
            call["thread"].join(60)
            assert "response" not in call, call  # the killed worker never answered
            # while the killed worker's transaction still waits on the test's lock, the other worker serves
            for _ in range(4):
                health = httpx.get(f"{api.base}/health", timeout=30)
                assert health.status_code == 200 and health.headers["x-shequ-worker"] != str(victim)
                assert httpx.get(f"{api.base}/grids/locate", params={"lon": src[0], "lat": src[1]},
                                 timeout=30).status_code == 200
        _wait_quiet(world)
        _assert_invariants(world, before)
        # the arbiter replaced the killed worker; the same edit, sent again, commits once
        wait_until(lambda: len(_server_workers(api)) == 2 and victim not in _server_workers(api),
                   "a new API worker in place of the killed one", 120)
        done = httpx.post(f"{api.base}/grid-edits/apply", json=body, headers=world["headers"], timeout=120)
        assert done.status_code == 201, done.text
        after = _snapshot(world)
        assert after["grids"] == {**before["grids"], a: before["grids"][a] + 1, b: before["grids"][b] + 1}
        assert after["counts"]["audit_log"] == before["counts"]["audit_log"] + 1
        with engine.connect() as conn:
            assert version_breaks(conn, "grid") == [] and audit.verify(conn) is None
            from grid_builder.edit.service import load_layout

            world["layout"] = load_layout(conn, world["community"])[1]
    finally:
        api.stop()


@pytest.mark.fuzz
@pytest.mark.timeout(3600)
def test_kill_9_at_random_moments_of_grid_edits(world, fuzz_cases, output_dir):
    """Seeded kills at a random moment of a grid edit apply (no lock: anywhere from the request's arrival to
    after its commit), of PostgreSQL and of the API in turn. Each time the edit is all or nothing — two new
    grid versions, one edit row and one audit entry, or none of them — the client was told the truth (201
    exactly when it committed, when the API survived), and every invariant holds."""
    import json
    import random
    import time
    from collections import Counter

    from grid_builder.edit.samples import movable_vertex
    from grid_builder.edit.service import load_layout

    engine = world["engine"]

    def body(seed: int) -> tuple[dict[str, Any], str, str]:
        with engine.connect() as conn:
            layout = load_layout(conn, world["community"])[1]
        src, dst, a, b = movable_vertex(layout, skip=seed % 3)
        return ({"community_code": world["community"], "operations": [{"op": "move_vertex", "from": src,
                                                                        "to": dst}],
                 "reason": f"随机故障测试 seed {seed}"}, a, b)

    # the window: one uninterrupted apply, measured (it only sizes the random delays; nothing asserts on it)
    first, _a, _b = body(99)
    t0 = time.monotonic()
    assert httpx.post(f"{world['api'].base}/grid-edits/apply", json=first, headers=world["headers"],
                      timeout=120).status_code == 201
    window = (time.monotonic() - t0) * 1.3
    outcomes: Counter[str] = Counter()
    for seed in range(fuzz_cases(1, 24)):
        rng = random.Random(seed)
        target = TARGETS[seed % 2]
        edit, a, b = body(seed)
        before = _snapshot(world)
        call = _fire("POST", f"{world['api'].base}/grid-edits/apply", json=edit, headers=world["headers"])
        time.sleep(rng.uniform(0.0, window))  # picks the moment of the kill
        if target == "postgres":
            kill_postmaster(world["cluster"], server_pids(engine))
            world["cluster"].start()
        else:
            world["api"].kill9()
            _restart_api(world)
        call["thread"].join(120)
        _wait_quiet(world)
        engine.dispose()
        after = _snapshot(world)
        committed = after["grids"] != before["grids"]
        if committed:
            assert after["grids"] == {**before["grids"], a: before["grids"][a] + 1, b: before["grids"][b] + 1}
            for table in ("grid_edit", "audit_log"):
                assert after["counts"][table] == before["counts"][table] + 1, (seed, table)
        else:
            assert after["counts"] == before["counts"], seed
        resp = call.get("response")
        assert after["issues"] == before["issues"], (seed, target, committed, resp, resp is not None and resp.text)
        if target == "postgres":  # the API lived: its answer says what happened
            assert resp is not None and resp.status_code == (201 if committed else 503), (seed, resp)
        with engine.connect() as conn:
            assert version_breaks(conn, "grid") == [] and audit.verify(conn) is None, seed
        _api_answers(world)
        outcomes[f"{target}:{'committed' if committed else 'nothing'}"] += 1
    (output_dir / "faults-random.json").write_text(json.dumps(
        {"cases": sum(outcomes.values()), "window_s": round(window, 2), "outcomes": dict(outcomes)}, indent=1))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("target", TARGETS)
def test_kill_9_mid_bulk_import_through_the_api(world, target):
    """`POST /addresses/import` (all or nothing, its audit entry in the import's transaction), held by the
    audit chain's advisory lock once every row is written, then killed: none of its roads, the same counts."""
    engine, api = world["engine"], world["api"]
    tag = f"{target}{secrets.token_hex(2)}"
    files = {"file": ("roads.csv", roads_csv(f"故障导入{tag}测试", 100, per_row=20), "text/csv")}
    before = _snapshot(world)
    with _held_by_audit_lock(world, "POST", f"{api.base}/addresses/import", files=files,
                             headers=world["headers"]) as (call, pid, pids):
        assert "standard_address" in _wrote(world, pid)
        _kill(world, target, pids, call)
    _wait_quiet(world)
    _assert_invariants(world, before)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM standard_address WHERE components->>'road' LIKE :p"),
                            {"p": f"故障导入{tag}%"}).scalar_one() == 0
    _api_answers(world)
    done = httpx.post(f"{world['api'].base}/addresses/import", files=files, headers=world["headers"], timeout=180)
    assert done.status_code == 201, done.text
    after = counts(engine, ("standard_address", "audit_log"))
    assert after == {"standard_address": before["counts"]["standard_address"] + 100,
                     "audit_log": before["counts"]["audit_log"] + 1}
