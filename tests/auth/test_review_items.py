"""One test per item of the API review (issue 10 §4), each failing with its fix reverted."""

from __future__ import annotations

import threading

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection

from gis_api.errors import database_error, install_handlers


def test_qr_plate_link_comes_from_the_configured_base_url(client, app, jurisdictions):
    """The plate's QR link is built from SHEQU_PUBLIC_BASE_URL, never from the request's Host header."""
    from address_registry import store
    from address_registry.qr import plate_svg

    code = jurisdictions["address"]
    forged = client.get(f"/addresses/{code}/qr.svg", headers={"Host": "evil.example"})
    assert forged.status_code == 200
    with app.state.engine.connect() as conn:
        rec = store.current(conn, code)
    configured = app.state.settings.public_base_url.rstrip("/") + "/"
    from gis_api.auth.secrets import load_or_create

    key = load_or_create("plate-hmac", app.state.auth_settings)  # the QR holds the signed link (issue 12)
    assert forged.text == plate_svg(rec, configured, key=key)
    assert forged.text != plate_svg(rec, "http://evil.example/", key=key)


def _tiny_app(engine) -> FastAPI:
    app = FastAPI()
    install_handlers(app)

    def conn_dep():
        with engine.begin() as conn:
            yield conn

    @app.post("/dup")
    def dup(conn: Connection = Depends(conn_dep, scope="function")):
        conn.execute(text("CREATE TEMP TABLE IF NOT EXISTS t_dup (k int PRIMARY KEY)"))
        conn.execute(text("INSERT INTO t_dup VALUES (1), (1)"))
        return {"ok": True}

    @app.get("/slow")
    def slow(conn: Connection = Depends(conn_dep, scope="function")):
        conn.execute(text("SET LOCAL statement_timeout = 50"))
        conn.execute(text("SELECT pg_sleep(2)"))
        return {"ok": True}

    @app.get("/hold")
    def hold():
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"ok": True}

    return app


def test_database_errors_answer_without_their_text(pg_url):
    from gis_api.db import sqlalchemy_url

    engine = create_engine(sqlalchemy_url(pg_url), pool_size=1, max_overflow=0, pool_timeout=0.2)
    try:
        c = TestClient(_tiny_app(engine), raise_server_exceptions=False)
        dup = c.post("/dup")
        assert dup.status_code == 409 and dup.json()["error"] == "conflict"
        assert "duplicate key" not in dup.text and "t_dup" not in dup.text and "pkey" not in dup.text
        slow = c.get("/slow")
        assert slow.status_code == 503 and slow.json()["error"] == "statement_timeout"
        assert "canceling" not in slow.text and slow.headers["retry-after"]
        # an exhausted pool: 503 with Retry-After, not a 500 or a hang
        held = engine.connect()
        try:
            busy = c.get("/hold")
            assert busy.status_code == 503 and busy.json()["error"] == "busy" and busy.headers["retry-after"]
        finally:
            held.close()
        assert c.get("/hold").status_code == 200
    finally:
        engine.dispose()


def test_database_error_table(engine):
    from sqlalchemy.exc import IntegrityError

    with engine.connect() as conn, pytest.raises(IntegrityError) as info:
        conn.execute(text("SELECT CAST(NULL AS int) AS x INTO TEMP t_nn; ALTER TABLE t_nn ALTER x SET NOT NULL"))
        conn.execute(text("INSERT INTO t_nn VALUES (NULL)"))
    status, code, message = database_error(info.value)
    assert (status, code) == (409, "conflict") and "t_nn" not in message


def test_saving_a_plan_keeps_other_areas_plans(engine, jurisdictions):
    """save=true replaces the planned facilities of the analysed area only (it used to delete the city's)."""
    from siting import store

    a, b = jurisdictions["community"], jurisdictions["other_community"]
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            ftype = conn.execute(text("SELECT code FROM facility_type ORDER BY code LIMIT 1")).scalar_one()
            points = {}
            for code in (a, b):
                lon, lat = conn.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p "
                                             "FROM admin_unit WHERE code = :c) s"), {"c": code}).one()
                points[code] = {"lon": lon, "lat": lat, "name": f"规划 {code}", "properties": {}}
            store.replace_planned_facilities(conn, ftype, [points[a]], a)
            store.replace_planned_facilities(conn, ftype, [points[b]], b)
            store.replace_planned_facilities(conn, ftype, [points[b], points[b]], b)
            names = sorted(n for (n,) in conn.execute(text(
                "SELECT name FROM facility WHERE status = 'planned' AND type_code = :t AND name LIKE '规划 %'"),
                {"t": ftype}))
            assert names == sorted([f"规划 {a}", f"规划 {b}", f"规划 {b}"])
        finally:
            trans.rollback()


def test_compound_registration_locks_before_its_checks(engine, jurisdictions):
    """Two concurrent registrations of the same compound: the second waits for the first and then sees
    the name taken (409); without the lock both pass the checks."""
    from address_registry import compounds
    from address_registry.errors import AddressConflict, RegistryError
    from geo.geometry import as_multipolygon

    with engine.connect() as conn:
        # a small square around a building of the demo that no compound covers
        geom_wkt = conn.execute(text(
            "SELECT ST_AsText(ST_Buffer(ST_PointOnSurface(b.geom)::geography, 30)::geometry) FROM building b "
            "JOIN admin_unit u ON u.level = 'community' AND u.valid_to IS NULL AND ST_Covers(u.geom, b.geom) "
            "WHERE NOT EXISTS (SELECT 1 FROM standard_address s WHERE s.level = 'compound' AND s.area IS NOT NULL "
            "AND ST_DWithin(s.area, b.geom, 0.002)) ORDER BY b.osm_id LIMIT 1")).scalar_one()
    import shapely

    area = as_multipolygon(shapely.from_wkt(geom_wkt))
    data = {"components": {"compound": "锁测试苑"}, "area": area}
    first = engine.connect()
    t1 = first.begin()
    outcome: dict[str, object] = {}
    try:
        compounds.create_compound(first, data, "m-lock-1", "并发测试")

        def second():
            with engine.connect() as conn:
                t2 = conn.begin()
                try:
                    compounds.create_compound(conn, data, "m-lock-2", "并发测试")
                    outcome["second"] = "created"
                except RegistryError as exc:
                    outcome["second"] = exc
                finally:
                    t2.rollback()

        worker = threading.Thread(target=second)
        worker.start()
        worker.join(timeout=1.5)
        assert worker.is_alive(), "the second registration did not wait for the first"
        t1.commit()
        worker.join(timeout=30)
        assert isinstance(outcome.get("second"), AddressConflict), outcome
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM address_alias WHERE address_code IN (SELECT code FROM standard_address "
                              "WHERE changed_by = 'm-lock-1')"))
            conn.execute(text("DELETE FROM standard_address WHERE changed_by = 'm-lock-1'"))
        first.close()


def test_request_limits_are_checked_before_work(client, jurisdictions):
    big = {"facility_type": "幼儿园", "pad": "x" * (3 * 1024 * 1024)}
    r = client.post("/analysis/coverage", json=big)
    assert r.status_code == 413 and r.json()["detail"]["max_bytes"] > 0
    assert client.get("/addresses", params={"offset": 100_001}).status_code == 422
    cells = client.get("/h3/cells", params={"area": "310115", "res": 12})
    assert cells.status_code == 413 and cells.json()["detail"]["estimated_cells"] > cells.json()["detail"]["max_cells"]
    pts = [{"id": i, "lon": 121.49, "lat": 31.23} for i in range(5000)]
    pairs = client.post("/analysis/siting", json={"model": "lscp", "demand": pts, "sites": pts, "radius_m": 300})
    assert pairs.status_code == 413 and "pairs" in pairs.json()["detail"]
    page = client.get("/grids", params={"limit": 2}).json()
    assert page["numberReturned"] == 2 and page["numberMatched"] > 2
