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


@pytest.fixture(scope="session")
def engine(pg_url):
    from gis_api.db import get_engine

    return get_engine(pg_url)


@pytest.fixture(scope="session")
def app(pg_url):
    from gis_api.app import create_app

    return create_app(db_url=pg_url)


@pytest.fixture(scope="session")
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


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
