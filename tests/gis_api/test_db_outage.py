"""Issue 15: the database disappearing under a running server. /health says so (503 with the reason and
Retry-After), requests that need the database fail with a 503 in the project's error body instead of
hanging or answering 500, and service resumes by itself when the database is back — no restart of the API.
Runs on an embedded cluster of its own (the session's cluster is never stopped)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gis_api.embedded_pg import EmbeddedPostgres, free_port
from gis_api.migrate import upgrade


@pytest.mark.timeout(300)
def test_database_outage_is_a_503_and_service_resumes():
    from gis_api.app import create_app

    root = Path(tempfile.mkdtemp(prefix="shequ-outage-"))
    cluster = EmbeddedPostgres(root, free_port(), fast=True)
    try:
        cluster.start()
        upgrade(cluster.url())
        app = create_app(db_url=cluster.url())
        with TestClient(app, raise_server_exceptions=False) as client:
            assert client.get("/health").json()["status"] == "ok"
            before = client.get("/collections")
            assert before.status_code == 200
            locate = {"lon": 121.49, "lat": 31.24}
            assert client.get("/grids/locate", params=locate).status_code == 200

            cluster.stop()
            health = client.get("/health")
            assert health.status_code == 503, health.text
            assert health.json()["status"] == "unavailable" and health.headers.get("Retry-After")
            for path, params in (("/grids/locate", locate), ("/collections/road/items", {"limit": 1})):
                down = client.get(path, params=params)
                assert down.status_code == 503, (path, down.text)
                assert down.json()["error"] == "database_unavailable" and down.headers.get("Retry-After"), path

            cluster.start()
            assert client.get("/health").json()["status"] == "ok"
            again = client.get("/collections")
            assert again.status_code == 200 and again.json() == before.json()
            assert client.get("/grids/locate", params=locate).json()["lon"] == 121.49
            items = client.get("/collections/road/items", params={"limit": 1})
            assert items.status_code == 200 and items.json()["type"] == "FeatureCollection"
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
