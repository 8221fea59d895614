"""Issue 15: long analyses run in analysis worker processes (`gis_api.offload`), never in the request.

On the real demo database: the analysis routes answer exactly what the in-request computation gave (the
same function run on a connection of the test); while analyses are running (held in PostgreSQL by a lock
the test holds, so nothing depends on timing) no pooled connection of the API, no thread of its pool and no
general admission slot is held by them — `pg_stat_activity` shows their backends as the workers'
(``shequ-analysis``) — and cheap requests (health, a feature read, a grid locate) are answered; a worker
killed mid-analysis is a 503 with ``Retry-After`` and the next analysis runs in a fresh worker.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import anyio
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_api.analysis_tasks import TASKS
from gis_api.offload import APPLICATION_NAME, AnalysisExecutor, json_bytes
from gis_api.schemas.analysis import CameraRequest, CoverageRequest, SitingRequest
from gis_api.schemas.workbench import IsochroneRequest

LIVENESS_S = 300  # a bound on waits for a state (never on how fast anything is)


@pytest.fixture(scope="module")
def planner(role_headers):
    return role_headers["planner"]


def _cases(community: str) -> list[tuple[str, str, type, dict, tuple]]:
    inline = [{"id": i, "lon": 121.48 + 0.002 * (i % 5), "lat": 31.23 + 0.002 * (i // 5)} for i in range(20)]
    return [
        ("coverage walk, one community", "/analysis/coverage", CoverageRequest,
         {"facility_type": "幼儿园", "distance": "walk", "community_code": community}, ()),
        ("coverage line, whole demo, uncovered only", "/analysis/coverage", CoverageRequest,
         {"facility_type": "kindergarten", "distance": "line", "include_buildings": False}, ()),
        ("isochrones 5/10 min", "/analysis/isochrones", IsochroneRequest,
         {"facility_type": "幼儿园", "minutes": [5, 10]}, ()),
        ("siting MCLP 2 new sites", "/analysis/siting", SitingRequest,
         {"facility_type": "幼儿园", "model": "mclp", "new_sites": 2, "community_code": community}, ()),
        ("siting inline LSCP", "/analysis/siting", SitingRequest,
         {"model": "lscp", "demand": inline, "sites": inline, "radius_m": 300}, ()),
        ("cameras k=3", "/analysis/cameras", CameraRequest,
         {"community_code": community, "k": 3, "headings": 4}, ()),
        ("coverage report CSV", "/analysis/coverage/report.csv", CoverageRequest,
         {"facility_type": "幼儿园", "distance": "walk", "community_code": community}, ("csv",)),
    ]


def _task(path: str) -> str:
    return {"/analysis/coverage": "coverage", "/analysis/isochrones": "isochrones", "/analysis/siting": "siting",
            "/analysis/cameras": "cameras", "/analysis/coverage/report.csv": "coverage_report"}[path]


#: how long a computation took: the one part of an answer that differs between two runs
TIMINGS = {"seconds", "solve_seconds"}


def _untimed(obj):
    if isinstance(obj, dict):
        return {k: _untimed(v) for k, v in obj.items() if k not in TIMINGS}
    if isinstance(obj, list):
        return [_untimed(v) for v in obj]
    return obj


def test_answers_equal_the_in_request_computation(client, planner, engine, jurisdictions, output_dir):
    """Each analysis route's answer, computed in a worker, equals the same analysis run in this process on
    a connection of the test (what the route computed in the request before); the times go to a report."""
    times = {}
    for label, path, model, body, extra in _cases(jurisdictions["community"]):
        t0 = time.perf_counter()
        res = client.post(path, headers=planner, json=body)
        t_route = time.perf_counter() - t0
        assert res.status_code == 200, (label, res.text)
        with engine.connect() as conn, conn.begin():
            t0 = time.perf_counter()
            direct = TASKS[_task(path)](conn, model.model_validate(body), "m-offload-test", *extra)
            t_direct = time.perf_counter() - t0
        if extra:  # a file: the same bytes and headers
            assert res.content == direct.body, label
            assert res.headers["content-type"].startswith(direct.media_type.split(";")[0])
            assert res.headers["content-disposition"] == direct.headers["Content-Disposition"]
        else:
            assert _untimed(res.json()) == _untimed(json.loads(json_bytes(direct))), label
            assert res.content == json_bytes(res.json()), label  # encoded as FastAPI encoded the route's dict
        times[label] = {"route_s": round(t_route, 3), "in_process_s": round(t_direct, 3), "bytes": len(res.content)}
    (output_dir / "analysis-offload-times.json").write_text(json.dumps(times, indent=2, ensure_ascii=False))


def test_errors_keep_their_answers(client, planner, role_headers):
    r = client.post("/analysis/coverage", headers=planner, json={"facility_type": "幼儿园", "community_code": "999999999999"})
    assert r.status_code == 404 and r.json()["error"] == "not_found" and r.json()["message"]
    r = client.post("/analysis/siting", headers=planner, json={"model": "mclp"})
    assert r.status_code == 422 and r.json()["message"]
    assert client.post("/analysis/coverage", json={"facility_type": "幼儿园"},
                       headers=role_headers["grid_manager"]).status_code == 403


def _analysis_backends(engine) -> list[tuple[int, str | None, str | None]]:
    # a new transaction each time: pg_stat_activity is a snapshot taken once per transaction
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
        "SELECT pid, state, wait_event_type FROM pg_stat_activity WHERE application_name = :a "
            "AND datname = current_database()"), {"a": APPLICATION_NAME}).all()]


def _busy_backends(engine, exclude: list[int]) -> list:
    """Backends of this database, other than the workers', ``exclude`` and the asking one, that are not idle."""
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT pid, application_name, state, left(query, 80) FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend' AND state <> 'idle' AND application_name <> :a "
            "AND pid <> ALL(:ex) AND pid <> pg_backend_pid()"), {"a": APPLICATION_NAME, "ex": exclude}).all()


@pytest.fixture
def outside(pg_url):
    """An engine of the test's own, outside the API's pool (the session's ``engine`` *is* the app's: same URL)."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from gis_api.db import sqlalchemy_url

    eng = create_engine(sqlalchemy_url(pg_url), poolclass=NullPool)
    yield eng
    eng.dispose()


def _until(what, predicate) -> None:
    deadline = time.monotonic() + LIVENESS_S
    while not predicate():
        assert time.monotonic() < deadline, f"never reached: {what}"
        time.sleep(0.2)


def test_running_analyses_hold_nothing_cheap_requests_need(pg_url, outside, planner, jurisdictions):
    """Two general slots, four analyses admitted, two worker processes: while the four are running (two in
    the workers, blocked on a lock the test holds on ``facility``; two queued for them) the API holds no
    pooled connection, no thread of its pool and no general slot for them, and cheap requests answer."""
    from gis_api.app import create_app
    from gis_api.settings import Settings

    app = create_app(Settings(max_in_flight=2, max_analyses_in_flight=4, admission_wait_s=2.0), db_url=pg_url)
    executor = app.state.analysis_executor = AnalysisExecutor(pg_url, workers=2)
    body = {"facility_type": "幼儿园", "distance": "walk", "community_code": jurisdictions["community"]}
    point = {"lon": 121.49, "lat": 31.24}
    with TestClient(app, headers=planner) as client:
        reference = client.post("/analysis/coverage", json=body)
        assert reference.status_code == 200, reference.text
        pool = app.state.engine.pool
        blocker = outside.connect()
        blocker_tx = blocker.begin()
        blocker.execute(text("LOCK TABLE facility IN ACCESS EXCLUSIVE MODE"))
        blocker_pid = blocker.execute(text("SELECT pg_backend_pid()")).scalar_one()
        results: list = []
        threads = [threading.Thread(target=lambda: results.append(client.post("/analysis/coverage", json=body)))
                   for _ in range(4)]
        try:
            for t in threads:
                t.start()
            _until("two analyses waiting on the lock in the workers", lambda: sum(
                w == "Lock" for _p, _s, w in _analysis_backends(outside)) == 2)
            _until("four analyses waiting for the workers", lambda: executor.waiting == 4)
            # what the API holds while they run
            assert pool.checkedout() == 0
            assert client.portal.call(_threads_borrowed) == 0
            assert _busy_backends(outside, [blocker_pid]) == []
            # the two general slots serve cheap requests (each would be a 503 if analyses held them)
            for _ in range(3):
                assert client.get("/health").status_code == 200
                assert client.get("/collections/road/items", params={"limit": 5}).status_code == 200
                assert client.get("/grids/locate", params=point).status_code == 200
            # a fifth analysis finds no analysis slot: a fast 503 with Retry-After, no queue without end
            fifth = client.post("/analysis/coverage", json=body)
            assert fifth.status_code == 503 and fifth.headers["retry-after"] and fifth.json()["error"] == "busy"
            assert all(t.is_alive() for t in threads) and not results
            # the workers' own connections, one busy per running analysis (the session app's workers may hold idle ones)
            assert sum(st != "idle" for _p, st, _w in _analysis_backends(outside)) == 2
        finally:
            blocker_tx.rollback()
            blocker.close()
            for t in threads:
                t.join(LIVENESS_S)
        assert [r.status_code for r in results] == [200] * 4
        assert all(_untimed(r.json()) == _untimed(reference.json()) for r in results)
        assert executor.waiting == 0 and pool.checkedout() == 0


async def _threads_borrowed() -> int:
    return anyio.to_thread.current_default_thread_limiter().borrowed_tokens


def test_a_killed_worker_is_a_503_and_the_next_analysis_runs(pg_url, outside, planner, jurisdictions):
    from gis_api.app import create_app

    app = create_app(db_url=pg_url)
    executor = app.state.analysis_executor = AnalysisExecutor(pg_url, workers=1)
    body = {"facility_type": "幼儿园", "distance": "line", "community_code": jurisdictions["community"]}
    with TestClient(app, headers=planner) as client:
        assert client.post("/analysis/coverage", json=body).status_code == 200
        blocker = outside.connect()
        blocker_tx = blocker.begin()
        blocker.execute(text("LOCK TABLE facility IN ACCESS EXCLUSIVE MODE"))
        result: list = []
        t = threading.Thread(target=lambda: result.append(client.post("/analysis/coverage", json=body)))
        try:
            t.start()
            _until("the analysis waiting on the lock", lambda: any(
                w == "Lock" for _p, _s, w in _analysis_backends(outside)))
            (worker_pid,) = list(executor.pool._processes)  # the one worker process
            os.kill(worker_pid, signal.SIGKILL)
            t.join(LIVENESS_S)
        finally:
            blocker_tx.rollback()
            blocker.close()
        died = result[0]
        assert died.status_code == 503 and died.headers["retry-after"] == "2", died.text
        assert died.json()["error"] == "service_unavailable"
        again = client.post("/analysis/coverage", json=body)
        assert again.status_code == 200 and again.json()["summary"]["households"] > 0
