"""Issue 14, serving beyond one database: a real streaming replica and several API workers behind one port.

One throw-away embedded cluster of its own (the session's cluster is never touched) with the admin units of
黄浦区, and a hot standby of it made by ``pg_basebackup -R`` (`EmbeddedPostgres.make_replica`). The app
runs against both (``DATABASE_URL_READ``): routes that only read are served by the replica (the session
is in recovery), writes by the primary, a client sees its own write at once (its WAL position sent back),
others when the replica has replayed it; a replica that is down costs a warning in the log, not an error.
Then ``shequ serve --workers 2`` on one port: two workers forked from the one process that loaded the geocoder
index, most of their memory shared with it; an address written through one request is geocoded by both
within 5 s (each brings its copy up to date from the database); a worker killed is replaced by a new fork that
shares the index too and finds the address.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_api.db import get_engine, get_read_engine
from gis_api.demo import read_admin_units, write_layer
from gis_api.embedded_pg import EmbeddedPostgres, free_port
from gis_api.migrate import upgrade
from gis_api.replica import LSN_COOKIE, MIN_LSN_HEADER, READ_FROM_HEADER, WRITE_LSN_HEADER
from gis_api.serving import children_of, process_memory

DISTRICT = "310101"  # 黄浦区
ROOT = Path(__file__).resolve().parents[2]


def _wait(cond, what: str, timeout: float = 30.0, step: float = 0.05):
    end = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step)


@pytest.fixture(scope="module")
def clusters(shared_data):
    """(primary, replica): the primary migrated, with 黄浦区 and the units above it; the replica streaming."""
    # a temp folder each: the folder itself becomes the server user's (its parent, /tmp, is traversable)
    roots = [Path(tempfile.mkdtemp(prefix="shequ-primary-")), Path(tempfile.mkdtemp(prefix="shequ-replica-"))]
    primary = EmbeddedPostgres(roots[0], free_port(), fast=True)
    replica = None
    try:
        primary.start()
        upgrade(primary.url())
        by_code = {u["code"]: u for u in read_admin_units(shared_data)}
        units, code = [], DISTRICT
        while code:
            units.append(by_code[code])
            code = by_code[code]["parent_code"]
        write_layer(get_engine(primary.url()), "admin_unit", units)
        replica = primary.make_replica(roots[1], free_port())
        yield primary, replica
    finally:
        for pg in (replica, primary):
            if pg is not None and pg.password_file.exists():
                get_engine(pg.url()).dispose()
                get_read_engine(pg.url()).dispose()
            if pg is not None:
                pg.stop()
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def admin_token(clusters) -> str:
    from gis_api.auth import roles as r
    from gis_api.auth import store, tokens

    primary, _ = clusters
    with get_engine(primary.url()).begin() as conn:
        user = store.create_user(conn, "replica-admin", r.ADMIN, "Shequ-Test-Pw-2026", "副本测试管理员")
    return tokens.issue_access_token(f"user:{user['id']}", user["name"], r.ADMIN)[0]


def _road(name: str, lon: float) -> dict:
    return {"level": "road", "parent_code": DISTRICT, "components": {"road": name}, "lon": lon, "lat": 31.232,
            "reason": "副本测试 replica test"}


def _replayed(replica: EmbeddedPostgres, lsn: str) -> bool:
    with get_engine(replica.url()).connect() as conn:
        return bool(conn.execute(text("SELECT pg_last_wal_replay_lsn() >= CAST(:l AS pg_lsn)"), {"l": lsn}).scalar())


def test_reads_on_the_replica_writes_on_the_primary_lag_and_outage(clusters, admin_token, caplog):
    from gis_api.app import create_app
    from gis_api.settings import get_settings

    primary, replica = clusters
    settings = get_settings().model_copy(update={"replica_retry_s": 0.5})
    app = create_app(settings, db_url=primary.url(), read_db_url=replica.url())
    router = app.state.read_router
    # the read session is on a server in recovery (the standby); the write engine's is not
    with router.begin() as (conn, where):
        assert where == "replica"
        assert conn.execute(text("SELECT pg_is_in_recovery()")).scalar() is True
    with app.state.engine.connect() as conn:
        assert conn.execute(text("SELECT pg_is_in_recovery()")).scalar() is False

    writer = TestClient(app, headers={"Authorization": f"Bearer {admin_token}"})
    reader = TestClient(app)  # another client: no cookie, no WAL position of the write
    listed = reader.get("/addresses", params={"level": "road"})
    assert listed.status_code == 200 and listed.headers[READ_FROM_HEADER] == "replica"

    replica_engine = get_engine(replica.url())
    with replica_engine.connect() as conn:  # hold replay: the replica now lags the primary for sure
        conn.execute(text("SELECT pg_wal_replay_pause()"))
    try:
        made = writer.post("/addresses", json=_road("副本测试甲路", 121.486))
        assert made.status_code == 201, made.text
        code, lsn = made.json()["address_code"], made.headers[WRITE_LSN_HEADER]
        assert writer.cookies.get(LSN_COOKIE) == lsn
        # the write is on the primary, not (yet) on the paused replica
        count = text("SELECT count(*) FROM standard_address WHERE code = :c")
        with app.state.engine.connect() as conn:
            assert conn.execute(count, {"c": code}).scalar_one() == 1
        with replica_engine.connect() as conn:
            assert conn.execute(count, {"c": code}).scalar_one() == 0
        # another reader sees the replica as it is: behind
        stale = reader.get(f"/addresses/{code}")
        assert stale.status_code == 404 and stale.headers[READ_FROM_HEADER] == "replica"
        # the writer (its cookie) and anyone sending the position read their write, from the primary
        mine = writer.get(f"/addresses/{code}")
        assert mine.status_code == 200 and mine.headers[READ_FROM_HEADER] == "primary"
        told = reader.get(f"/addresses/{code}", headers={MIN_LSN_HEADER: lsn})
        assert told.status_code == 200 and told.headers[READ_FROM_HEADER] == "primary"
    finally:
        with replica_engine.connect() as conn:
            conn.execute(text("SELECT pg_wal_replay_resume()"))
    _wait(lambda: _replayed(replica, lsn), "the replica to replay the write")
    for client in (writer, reader):  # caught up: the replica serves the writer too
        got = client.get(f"/addresses/{code}", headers={MIN_LSN_HEADER: lsn})
        assert got.status_code == 200 and got.headers[READ_FROM_HEADER] == "replica"
        assert got.json()["components"]["road"] == "副本测试甲路"

    # a replica that is down: reads go to the primary with a warning in the log, never an error
    replica_engine.dispose()
    replica.stop()
    try:
        with caplog.at_level(logging.WARNING, logger="gis_api.replica"):
            for _ in range(3):
                got = reader.get(f"/addresses/{code}")
                assert got.status_code == 200 and got.headers[READ_FROM_HEADER] == "primary"
            grids = reader.get("/grids/locate", params={"lon": 121.486, "lat": 31.232})
            assert grids.status_code == 200 and grids.headers[READ_FROM_HEADER] == "primary"
        warned = [r for r in caplog.records if r.name == "gis_api.replica" and r.levelno == logging.WARNING]
        assert warned and "read replica unavailable" in warned[0].getMessage()
    finally:
        replica.start()
    # back up: after replica_retry_s the reads return to it
    _wait(lambda: reader.get(f"/addresses/{code}").headers[READ_FROM_HEADER] == "replica", "reads back on the replica")
    app.state.engine.dispose()
    router.replica.dispose()


def test_replica_reads_only_on_routes_that_never_write(clusters):
    """`read_conn` (the replica's connection) only on GET routes with no audited write in their dependencies."""
    from gis_api.app import create_app
    from gis_api.auth.deps import api_routes
    from gis_api.deps import read_conn

    primary, _ = clusters
    app = create_app(db_url=primary.url())
    on_replica, wrong = [], []
    for route in api_routes(app):
        stack, calls = list(route.dependant.dependencies), []
        while stack:
            dep = stack.pop()
            calls.append(dep)
            stack.extend(dep.dependencies)
        if any(d.call is read_conn for d in calls):
            on_replica.append(route.path)
            audited = any(getattr(d.call, "__name__", "").startswith("audited_") for d in calls)
            if set(route.methods) - {"GET", "HEAD"} or audited or any(
                    d.call is read_conn and d.scope != "function" for d in calls):
                wrong.append(f"{sorted(route.methods)} {route.path}")
    assert len(on_replica) >= 8
    assert not wrong, wrong
    # without a replica the same routes read on the primary, in a read-only transaction all the same
    with app.state.read_router.begin() as (conn, where):
        assert where == "primary"
        assert conn.execute(text("SHOW transaction_read_only")).scalar() == "on"


def _base_roads(primary) -> None:
    """A registry for the server to load before it forks (a delta of a few roads against an empty index
    would be "large": more than 20 % of it, a whole rebuild): 15 roads, made once per module's cluster."""
    from address_registry.lifecycle import create_address

    with get_engine(primary.url()).begin() as conn:
        have = conn.execute(text("SELECT count(*) FROM standard_address WHERE level = 'road' "
                                 "AND components->>'road' LIKE '副本测试基础%'")).scalar_one()
        if have < 15:
            for i in range(15):
                create_address(conn, _road(f"副本测试基础{i}路", 121.47 + 0.001 * i), "replica-admin",
                               "副本测试 replica test")


@contextmanager
def _served(env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen]:
    """`shequ serve --workers 2` with ``env``, its output in ``log_path``: yielded once /health answers, then
    stopped (SIGTERM, then its whole session killed if it has not gone within 30 s)."""
    with log_path.open("wb") as log_file:
        server = subprocess.Popen([sys.executable, "-m", "gis_api.cli", "serve", "--workers", "2"], env=env,
                                  cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def up() -> bool:
            assert server.poll() is None, log_path.read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{env['SHEQU_PORT']}/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        _wait(up, "shequ serve --workers 2", timeout=120, step=0.2)
        yield server
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _geocoded(port: int, road: str, timeout: float = 10) -> tuple[str, bool]:
    """(answering worker pid, whether geocoding found ``road``), on a new connection each time."""
    got = httpx.get(f"http://127.0.0.1:{port}/geocode", params={"q": f"上海市黄浦区{road}", "limit": 1},
                    timeout=timeout, headers={"Connection": "close"})
    assert got.status_code == 200, got.text
    results = got.json()["results"]
    return got.headers["x-shequ-worker"], bool(results) and results[0].get("components", {}).get("road") == road


def _shares(pid: int) -> dict[str, int]:
    """A worker's memory (kB) and whether its heap is mostly shared: a worker forked from the parent that
    loaded the index (and the parser's model) shares its anonymous pages with the parent and its siblings,
    so its proportional share of them is well under their size (about a third with two workers); a process
    that made all that itself (uvicorn's spawned workers before) shares only the libraries' files — its
    anonymous memory is its own (measured on the demo: share 1.0, the 189 MB of a spawned worker's USS)."""
    mem = process_memory(pid)
    return {**mem, "mostly_shared": mem["pss_anon"] < 0.6 * mem["anon"] and mem["uss"] < 0.5 * mem["rss"]}


@pytest.mark.timeout(300)
def test_two_workers_on_one_port_share_the_index_and_geocode_a_write_within_5_s(clusters, admin_token, tmp_path):
    primary, replica = clusters
    port = free_port()
    # the served workers' own files (the geocoder snapshot of this throw-away cluster) in a temp folder
    env = {**os.environ, "DATABASE_URL": primary.url(), "DATABASE_URL_READ": replica.url(),
           "SHEQU_PORT": str(port), "SHEQU_DATA_DIR": str(tmp_path)}
    env.pop("SHEQU_DATABASE_URL", None)
    _base_roads(primary)
    log_path = tmp_path / "serve.log"
    base = f"http://127.0.0.1:{port}"
    with _served(env, log_path) as server:
        auth = {"Authorization": f"Bearer {admin_token}"}
        first = httpx.post(f"{base}/addresses", json=_road("副本测试乙路", 121.487), headers=auth, timeout=30)
        assert first.status_code == 201, first.text
        # both workers answer on the one port, each with the registry loaded
        seen: set[str] = set()
        _wait(lambda: seen.add(_geocoded(port, "副本测试乙路", timeout=120)[0]) or len(seen) == 2, "both workers",
              timeout=150)
        # they are the children of the one server process (the arbiter), forked after it loaded the index:
        # most of each worker's memory is shared with it
        workers = {int(pid) for pid in seen}
        assert workers == set(children_of(server.pid)), (workers, children_of(server.pid))
        for pid in workers:
            mem = _shares(pid)
            print(f"worker {pid}: {mem}")
            assert mem["mostly_shared"], mem
        assert "geocoder loaded before the workers fork" in log_path.read_text()

        made = httpx.post(f"{base}/addresses", json=_road("副本测试丙路", 121.488), headers=auth, timeout=30)
        assert made.status_code == 201, made.text
        written = time.monotonic()
        found_by: dict[str, float] = {}
        misses = 0
        while len(found_by) < 2 and time.monotonic() - written < 5.0:
            pid, found = _geocoded(port, "副本测试丙路")
            if found:
                found_by.setdefault(pid, time.monotonic() - written)
            else:
                misses += 1
        print(f"write seen by worker after s: {found_by}, misses before: {misses}")
        assert set(found_by) == seen, (found_by, misses)
        # and once it is there it stays: every answer of either worker now finds it
        answers = [_geocoded(port, "副本测试丙路") for _ in range(10)]
        assert all(found for _, found in answers)

        # a worker that dies is replaced by a new fork of the arbiter, which first brings its own index up to
        # date (the roads written since it loaded): the new worker shares it and finds them
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        fresh = _wait(lambda: set(children_of(server.pid)) - workers if victim not in children_of(server.pid)
                      else None, "a replacement worker", timeout=60, step=0.2)
        [new_pid] = fresh
        answered: dict[str, bool] = {}
        _wait(lambda: answered.update([_geocoded(port, "副本测试丙路", timeout=60)]) or str(new_pid) in answered,
              "the replacement worker answering", timeout=90, step=0.05)
        assert answered[str(new_pid)] is True
        assert "arbiter's geocoder before forking worker 3: up to date" in log_path.read_text()
        mem = _shares(new_pid)
        print(f"replacement worker {new_pid}: {mem}")
        assert mem["mostly_shared"], mem
        # `shequ serve` keeps the geocoder's snapshot (issue 14): the arbiter's load wrote one, owner-only
        [snap] = (tmp_path / "geocoder").glob("geocoder-*.snap")
        assert snap.stat().st_mode & 0o077 == 0


@pytest.mark.timeout(240)
def test_workers_replaced_after_max_requests_are_new_forks_that_share(clusters, admin_token, tmp_path):
    """SHEQU_WORKER_MAX_REQUESTS: a worker that served that many requests is replaced by a new fork of the
    arbiter (the pages its requests unshared given back), and geocoding goes on throughout."""
    primary, _ = clusters
    _base_roads(primary)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": primary.url(), "SHEQU_PORT": str(port), "SHEQU_DATA_DIR": str(tmp_path),
           "SHEQU_WORKER_MAX_REQUESTS": "20"}
    env.pop("SHEQU_DATABASE_URL", None)
    env.pop("DATABASE_URL_READ", None)
    log_path = tmp_path / "serve.log"
    with _served(env, log_path) as server:
        # /health answers once one worker is up; the arbiter may still be forking the second
        def both_forked() -> set[int] | None:
            kids = set(children_of(server.pid))
            return kids if len(kids) == 2 else None

        first = _wait(both_forked, "both workers forked", timeout=60, step=0.1)
        assert len(first) == 2
        answered: set[str] = set()
        # a request goes to whichever worker accepts first, so the split between the two is uneven: keep
        # asking until both first workers have answered and been replaced (each after 20–22 requests), with
        # a bound far above the 44 requests that takes when the split is even
        for _ in range(600):
            pid, _found = _geocoded(port, "副本测试基础1路", timeout=60)
            answered.add(pid)
            if {str(p) for p in first} <= answered and not set(children_of(server.pid)) & first:
                break
        # the arbiter forks the replacement just after the old worker exits: wait for it
        deadline = time.monotonic() + 30
        while len(now := set(children_of(server.pid))) != 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(now) == 2 and not now & first, (first, now)
        assert {str(p) for p in first} <= answered
        for pid in now:
            assert _shares(pid)["mostly_shared"]
        assert "Maximum request limit" in log_path.read_text()
