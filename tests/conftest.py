"""Session fixtures: a real, throw-away PostGIS with the demo city loaded, once per test session.

With DATABASE_URL set, that server is used instead (it must be a scratch database: the demo is loaded
into it). Otherwise an embedded cluster is started in a temp folder on a free port and removed at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest

from gis_api.settings import get_settings, project_root

SHARED_DATA = Path(os.environ.get("SHEQU_SHARED_DATA_DIR", project_root().parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "shanghai-bund").exists():
        pytest.fail(f"shared data not found at {SHARED_DATA}: tests need the real data beside the checkout")
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def _secrets_in_a_temp_folder(tmp_path_factory):
    """Generated secrets (JWT key, admin password) of the test session live in a temp folder, not var/."""
    os.environ["SHEQU_SECRETS_DIR"] = str(tmp_path_factory.mktemp("secrets"))
    yield
    os.environ.pop("SHEQU_SECRETS_DIR", None)


@pytest.fixture(scope="session")
def pg_url(shared_data) -> str:
    from gis_api.db import get_engine
    from gis_api.demo import load_demo
    from gis_api.embedded_pg import EmbeddedPostgres, free_port
    from gis_api.migrate import upgrade

    url = os.environ.get("DATABASE_URL")
    cluster = root = None
    if not url:
        root = Path(tempfile.mkdtemp(prefix="shequ-pg-"))
        cluster = EmbeddedPostgres(root, free_port(), fast=True)
        cluster.start()
        url = cluster.url()
        # subprocesses (CLI tests) and Settings() see the same database
        os.environ["DATABASE_URL"] = url
        get_settings.cache_clear()
    upgrade(url)
    load_demo(get_engine(url), shared_data)
    yield url
    get_engine(url).dispose()
    if cluster is not None:
        cluster.stop()
        os.environ.pop("DATABASE_URL", None)
        get_settings.cache_clear()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def rolled_back(engine):
    """A connection in a transaction rolled back after the test: what the test writes never reaches the
    later tests."""
    conn = engine.connect()
    trans = conn.begin()
    try:
        yield conn
    finally:
        trans.rollback()
        conn.close()


@pytest.fixture(scope="session")
def engine(pg_url):
    from gis_api.db import get_engine

    return get_engine(pg_url)


@pytest.fixture(scope="session")
def app(pg_url):
    from gis_api.app import create_app

    return create_app(db_url=pg_url)


@pytest.fixture(scope="session")
def admin_headers(engine) -> dict[str, str]:
    """A bearer token of a committed admin account (``m-client-admin``) for the tests of features."""
    from sqlalchemy import text

    from gis_api.auth import roles as r
    from gis_api.auth import store, tokens

    with engine.begin() as conn:
        conn.execute(text("DELETE FROM app_user WHERE name = 'm-client-admin'"))
        user = store.create_user(conn, "m-client-admin", r.ADMIN, "Shequ-Test-Pw-2026", "测试管理员")
    token, _ = tokens.issue_access_token(f"user:{user['id']}", user["name"], r.ADMIN)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def client(app, admin_headers):
    """A client signed in as an admin (the feature tests); access rules are tested with `anon_client`
    and `role_headers`."""
    from fastapi.testclient import TestClient

    with TestClient(app, headers=admin_headers) as c:
        yield c


@pytest.fixture(scope="session")
def anon_client(app, client):
    """A client with no credentials (the public); shares the app started by `client`."""
    from fastapi.testclient import TestClient

    return TestClient(app)


@pytest.fixture(scope="session")
def output_dir() -> Path:
    """Where tests save artefacts worth looking at (screenshots, maps): test-output/ in the checkout."""
    out = project_root() / "test-output"
    out.mkdir(exist_ok=True)
    return out


@pytest.fixture(scope="module")
def live_server(app):
    """A real HTTP server on loopback, for clients that cannot use TestClient (OWSLib, the browser)."""
    import uvicorn

    from gis_api.embedded_pg import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _pick_jurisdictions(engine) -> dict[str, str]:
    """Real codes to grant: a township, a community in it, a grid in that community and another one, a
    house-number address inside the first community and one outside it. Builds what is missing (the
    provisional boundaries, the address registry, the grids of two communities), idempotently."""
    from sqlalchemy import text

    from address_registry.service import build_registry
    from grid_builder.pipeline import BuildConfig
    from grid_builder.service import build_all, derive_boundaries

    def scalar(sql: str, **params):
        with engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    rebuild = False
    if not scalar("SELECT count(*) FROM admin_unit WHERE level = 'community' AND valid_to IS NULL"):
        derive_boundaries(engine)
        rebuild = True  # addresses built before the communities existed carry none: place them again
    placed = ("SELECT count(DISTINCT a.community_code) FROM standard_address a JOIN admin_unit u ON "
              "u.code = a.community_code AND u.valid_to IS NULL WHERE a.level = 'house_number' AND a.valid_to IS NULL")
    if rebuild or (scalar(placed) or 0) < 2:
        with engine.begin() as conn:
            build_registry(conn)
    # two communities that hold house-number addresses, each with its grids
    with engine.connect() as conn:
        comms = [c for (c,) in conn.execute(text(
            "SELECT a.community_code FROM standard_address a JOIN admin_unit u ON u.code = a.community_code "
            "AND u.valid_to IS NULL WHERE a.level = 'house_number' AND a.valid_to IS NULL "
            "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 2"))]
    missing = [c for c in comms if not scalar(
        "SELECT count(*) FROM grid WHERE community_code = :c AND level = 'grid' AND valid_to IS NULL", c=c)]
    if missing:
        build_all(engine, BuildConfig(), codes=missing)
    out: dict[str, str] = {}
    for key, comm in zip(("", "other_"), comms, strict=True):
        out[key + "community"] = comm
        out[key + "township"] = scalar("SELECT parent_code FROM admin_unit WHERE code = :c", c=comm)
        out[key + "grid"] = scalar("SELECT min(code) FROM grid WHERE community_code = :c AND level = 'grid' "
                                   "AND valid_to IS NULL", c=comm)
        out[key + "address"] = scalar("SELECT min(code) FROM standard_address WHERE community_code = :c "
                                      "AND level = 'house_number' AND valid_to IS NULL", c=comm)
    return out


def _jurisdictions_hold(engine, codes: dict[str, str]) -> bool:
    """Whether the picked codes still describe today's data: each community active under its township,
    its grid active in it, its address active and placed in it (a test module that re-derives the
    provisional boundaries or imports a city's own gives new codes)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        for key in ("", "other_"):
            ok = conn.execute(text(
                "SELECT EXISTS (SELECT 1 FROM admin_unit WHERE code = :c AND parent_code = :t AND valid_to IS NULL) "
                "AND EXISTS (SELECT 1 FROM grid WHERE code = :g AND community_code = :c AND valid_to IS NULL) "
                "AND EXISTS (SELECT 1 FROM standard_address WHERE code = :a AND community_code = :c "
                "AND valid_to IS NULL)"),
                {"c": codes[key + "community"], "t": codes[key + "township"], "g": codes[key + "grid"],
                 "a": codes[key + "address"]}).scalar()
            if not ok:
                return False
    return True


def _grant_role_accounts(conn, codes: dict[str, str]) -> None:
    """The street, community and grid-manager test accounts get exactly the given codes; the test police
    area is drawn over the first community."""
    from sqlalchemy import text

    from gis_api.auth import store

    conn.execute(text("DELETE FROM user_grant WHERE user_id IN (SELECT id FROM app_user WHERE name IN "
                      "('m-street', 'm-community', 'm-grid_manager'))"))
    conn.execute(text("UPDATE police_area SET geom = (SELECT ST_Multi(geom) FROM admin_unit WHERE code = :c "
                      "AND valid_to IS NULL) WHERE code = 'M-PA-1'"), {"c": codes["community"]})
    store.grant(conn, "m-street", "township", codes["township"])
    store.grant(conn, "m-community", "community", codes["community"])
    store.grant(conn, "m-grid_manager", "grid", codes["grid"])


@pytest.fixture(scope="session")
def _session_jurisdictions(engine) -> dict[str, str]:
    return _pick_jurisdictions(engine)


@pytest.fixture(scope="module")
def jurisdictions(engine, _session_jurisdictions, role_headers) -> dict[str, str]:
    """`_pick_jurisdictions`, checked again for each test module: when modules that ran before changed the
    boundaries (new codes), the codes are picked again, in place, and the role accounts granted them."""
    codes = _session_jurisdictions
    if not _jurisdictions_hold(engine, codes):
        codes.clear()
        codes.update(_pick_jurisdictions(engine))
        with engine.begin() as conn:
            _grant_role_accounts(conn, codes)
    return codes


@pytest.fixture(scope="session")
def role_headers(engine, _session_jurisdictions) -> dict[str, dict[str, str]]:
    """Request headers per role: a committed account per person role (names ``m-<role>``) granted the
    ``jurisdictions`` codes, a bearer token each; ``system`` an API key with every scope,
    ``system_geocode`` one with the ``geocode`` scope only; ``public`` no header. The police account is granted a station area drawn over the
    first community."""
    from sqlalchemy import text

    from gis_api.auth import roles as r
    from gis_api.auth import store, tokens

    jurisdictions = _session_jurisdictions
    password = "m-Passw0rd-矩阵"
    grants = {
        r.STREET: ("township", jurisdictions["township"]),
        r.COMMUNITY: ("community", jurisdictions["community"]),
        r.GRID_MANAGER: ("grid", jurisdictions["grid"]),
        r.POLICE: ("police_area", "M-PA-1"),
    }
    headers: dict[str, dict[str, str]] = {"public": {}}
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM app_user WHERE name = ANY(:n)"), {"n": [f"m-{x}" for x in r.USER_ROLES]})
        conn.execute(text("DELETE FROM police_area WHERE code LIKE 'M-%'"))
        conn.execute(text("DELETE FROM api_key WHERE name LIKE 'm-%'"))
        conn.execute(text(
            "INSERT INTO police_area (code, name, source, geom) SELECT 'M-PA-1', '测试派出所辖区', 'test', "
            "ST_Multi(geom) FROM admin_unit WHERE code = :c"), {"c": jurisdictions["community"]})
        for role in r.USER_ROLES:
            user = store.create_user(conn, f"m-{role}", role, password, f"矩阵 {role}", "13912345678", "测试")
            if role in grants:
                store.grant(conn, user["name"], *grants[role])
            token, _ = tokens.issue_access_token(f"user:{user['id']}", user["name"], role)
            headers[role] = {"Authorization": f"Bearer {token}"}
        _, every = store.create_api_key(conn, "m-system", sorted(r.SCOPES), "test", rate_per_min=100_000)
        _, geocode_only = store.create_api_key(conn, "m-system-geocode", ["geocode"], "test", rate_per_min=100_000)
    headers[r.SYSTEM] = {"X-API-Key": every}
    headers["system_geocode"] = {"X-API-Key": geocode_only}
    return headers


@pytest.fixture(scope="session")
def fuzz_cases():
    """How many cases a seeded property / fuzz test runs: its small budget in `make test`, its full one
    under `make fuzz` (SHEQU_FUZZ=1). Mark such tests ``@pytest.mark.fuzz``."""
    full = os.environ.get("SHEQU_FUZZ") == "1"

    def cases(small: int, large: int) -> int:
        return large if full else small

    return cases


@pytest.fixture(scope="module")
def dask_client():
    """A Dask LocalCluster of two worker processes (one thread each) for one test module (issue 14)."""
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="session")
def synth_inputs(shared_data):
    """The real structure a synthetic city grows from: named roads, Shanghai's districts, admin names."""
    from address_registry import synth

    return synth.inputs_from_files(shared_data)


@pytest.fixture(scope="session")
def synth_city(synth_inputs):
    """A small synthetic city (`shequ demo synth -n 4000 --seed 11`, in memory; every row synthetic)."""
    from address_registry import synth

    d = synth_inputs
    return synth.grow_city(d["roads"], d["districts"], 4_000, seed=11, admin_names=d["admin_names"])
