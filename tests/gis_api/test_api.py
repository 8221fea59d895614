"""API skeleton: health, OpenAPI, error bodies."""

from gis_api.app import create_app


def test_health_reports_postgis(client):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["postgis"].startswith("3.")


def test_health_503_when_db_down():
    from fastapi.testclient import TestClient

    from gis_api.embedded_pg import free_port

    app = create_app(db_url=f"postgresql://nobody@127.0.0.1:{free_port()}/nothing")
    with TestClient(app) as c:
        r = c.get("/health")
    assert r.status_code == 503
    assert r.json()["status"] == "unavailable"
    assert "database unavailable" in r.json()["reason"]
    # the database's own error text (host, port, "connection refused") never reaches the caller
    assert "127.0.0.1" not in r.text and "refused" not in r.text.lower() and r.headers["retry-after"]


def test_openapi_and_docs(client):
    schema = client.get("/openapi.json").json()
    assert "/health" in schema["paths"]
    page = client.get("/docs")
    assert page.status_code == 200
    # offline: Swagger UI comes from the product's own static files, never a CDN
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page.text
    assert "cdn." not in page.text and "unpkg" not in page.text
    assert client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200


def test_unknown_path_gives_json_error(client):
    r = client.get("/no/such/thing")
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"
