"""Issue 15: saturation answers fast and honestly — a request beyond the admitted ones gets 503 ``busy``
with ``Retry-After`` (never a hang), ``/health`` is answered while every pooled connection is taken, and
service resumes by itself when a slot frees. Deterministic: requests are held open by events, not timing."""

from __future__ import annotations

import threading

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from gis_api.admission import AdmissionMiddleware


def _held_app(max_in_flight: int):
    entered, release = threading.Event(), threading.Event()
    app = FastAPI()
    app.add_middleware(AdmissionMiddleware, max_in_flight=max_in_flight, wait_s=0.05)

    @app.get("/hold")
    def hold():
        entered.set()
        release.wait(30)
        return {"held": True}

    @app.get("/quick")
    def quick():
        return {"ok": True}

    @app.get("/health")
    def health():
        return {"status": "ok"}

    return app, entered, release


def test_a_request_beyond_the_slots_is_a_fast_503_and_service_resumes():
    app, entered, release = _held_app(max_in_flight=1)
    with TestClient(app) as client:
        results: dict[str, int] = {}
        holder = threading.Thread(target=lambda: results.setdefault("hold", client.get("/hold").status_code))
        holder.start()
        assert entered.wait(10)
        busy = client.get("/quick")
        assert busy.status_code == 503
        assert busy.headers["retry-after"] == "2"
        assert busy.json()["error"] == "busy" and "retry" in busy.json()["message"]
        assert client.get("/health").status_code == 200  # never queued
        release.set()
        holder.join(10)
        assert results["hold"] == 200
        assert client.get("/quick").status_code == 200  # the slot came back


def test_slots_are_released_when_a_route_fails():
    app = FastAPI()
    app.add_middleware(AdmissionMiddleware, max_in_flight=1, wait_s=0.05)

    @app.get("/boom")
    def boom():
        raise RuntimeError("boom")

    @app.get("/quick")
    def quick():
        return {"ok": True}

    with TestClient(app, raise_server_exceptions=False) as client:
        for _ in range(3):
            assert client.get("/boom").status_code == 500
        assert client.get("/quick").status_code == 200


def test_health_is_answered_while_the_pool_is_exhausted(app, client):
    engine = app.state.engine
    pool = engine.pool
    capacity = pool.size() + pool._max_overflow
    # every connection the pool can give is taken (some may already be out: a job runner, a keeper)
    held = [engine.connect() for _ in range(capacity - pool.checkedout())]
    try:
        assert pool.checkedout() == capacity
        res = client.get("/health")
        assert res.status_code == 200, res.text
        assert res.json()["status"] == "ok" and res.json()["postgis"]
    finally:
        for conn in held:
            conn.close()


def test_the_app_admits_requests_through_its_settings(app, client):
    admission = [m for m in app.user_middleware if m.cls is AdmissionMiddleware]
    assert len(admission) == 1 and admission[0].kwargs["max_in_flight"] == app.state.settings.max_in_flight
    assert client.get("/addresses", params={"limit": 1}).status_code == 200


def test_synchronous_analyses_take_at_most_their_own_slots():
    """With 3 slots, 1 of them for analyses: a second analysis is a fast 503 while cheap requests still get
    the free slots; a failing analysis gives both its slots back."""
    entered, release = threading.Event(), threading.Event()
    app = FastAPI()
    app.add_middleware(AdmissionMiddleware, max_in_flight=3, wait_s=0.05, max_analyses=1)

    @app.post("/analysis/coverage")
    def coverage(fail: bool = False):
        if fail:
            raise RuntimeError("boom")
        entered.set()
        release.wait(30)
        return {"covered": 1}

    @app.post("/analysis/jobs")
    def job():
        return {"id": 1}

    @app.get("/quick")
    def quick():
        return {"ok": True}

    with TestClient(app, raise_server_exceptions=False) as client:
        results: dict[str, int] = {}
        holder = threading.Thread(target=lambda: results.setdefault("first",
                                                                   client.post("/analysis/coverage").status_code))
        holder.start()
        assert entered.wait(10)
        second = client.post("/analysis/coverage")
        assert second.status_code == 503 and second.headers["retry-after"] == "2"
        assert second.json()["error"] == "busy"
        assert client.get("/quick").status_code == 200  # the other slots serve cheap requests
        assert client.post("/analysis/jobs").status_code == 200  # submitting a job is not an analysis
        release.set()
        holder.join(10)
        assert results["first"] == 200
        for _ in range(3):
            assert client.post("/analysis/coverage", params={"fail": True}).status_code == 500
        entered.clear()
        assert client.post("/analysis/coverage").status_code == 200  # every slot came back


def test_analysis_slots_may_exceed_the_general_ones():
    # an analysis gives its general slot back while it waits for its worker process (gis_api.offload), so
    # more analyses than general slots may wait at once (tests/gis_api/test_analysis_offload.py)
    middleware = AdmissionMiddleware(app=None, max_in_flight=2, wait_s=0.1, max_analyses=5)
    assert middleware.max_analyses == 5
    assert AdmissionMiddleware(app=None, max_in_flight=4, wait_s=0.1).max_analyses == 4


def test_an_analysis_waiting_elsewhere_gives_its_general_slot_back():
    """One general slot: while an analysis route waits (after `release_slot`), cheap requests are served;
    a second analysis takes its own analysis slot; the slot released early is not released twice."""
    import anyio

    from gis_api.admission import release_slot

    started, done = threading.Event(), anyio.Event
    app = FastAPI()
    app.add_middleware(AdmissionMiddleware, max_in_flight=1, wait_s=0.05, max_analyses=2)
    finish: list = []

    @app.post("/analysis/coverage")
    async def coverage(request: Request):
        release_slot(request.scope)
        release_slot(request.scope)  # idempotent
        event = done()
        finish.append(event)
        started.set()
        await event.wait()
        return {"covered": 1}

    @app.get("/quick")
    def quick():
        return {"ok": True}

    with TestClient(app) as client:
        results: list[int] = []
        waiting = [threading.Thread(target=lambda: results.append(client.post("/analysis/coverage").status_code))
                   for _ in range(2)]
        for t in waiting:
            started.clear()
            t.start()
            assert started.wait(10)
        assert client.post("/analysis/coverage").status_code == 503  # both analysis slots taken
        for _ in range(3):
            assert client.get("/quick").status_code == 200  # the one general slot is free
        for event in finish:
            client.portal.call(event.set)
        for t in waiting:
            t.join(10)
        assert results == [200, 200]
        assert client.get("/quick").status_code == 200
