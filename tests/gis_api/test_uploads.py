"""Upload size limits are enforced before the body is read (gis_api.uploads), on the real app.

The ASGI tests call the application directly with a `receive` that counts what the server pulls,
so "the server did not read it all" is measured, not assumed."""

from __future__ import annotations

import asyncio
import json

import pytest

from gis_api.routers.addresses import MAX_IMPORT_BYTES, MULTIPART_OVERHEAD_BYTES
from gis_api.routers.geocode import MAX_BATCH_BYTES

CHUNK = 64 * 1024
BOUNDARY = "shequ-test-boundary"


def _multipart_head() -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="changed_by"\r\n\r\ntest\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        "Content-Type: text/csv\r\n\r\ndistrict,road,house_number,lon,lat\n"
    ).encode()


def _call(
    app, path: str, headers: dict[str, str], total_bytes: int, head: bytes = b""
) -> tuple[int, dict, int]:
    """POST `total_bytes` of body (a head, then filler) in 64 KB chunks; (status, json body, bytes pulled)."""
    pulled = 0
    sent: list[dict] = []

    async def receive():
        nonlocal pulled
        if pulled >= total_bytes:
            return {"type": "http.request", "body": b"", "more_body": False}
        start = pulled
        size = min(CHUNK, total_bytes - pulled)
        body = (head[start : start + size] + b"#" * size)[:size]
        pulled += size
        return {"type": "http.request", "body": body, "more_body": pulled < total_bytes}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body), pulled


def test_oversized_file_gets_413_with_message(client):
    big = b"district,road,house_number,lon,lat\n" + b"#" * (MAX_IMPORT_BYTES + 1024)
    r = client.post(
        "/addresses/import", data={"changed_by": "test"}, files={"file": ("big.csv", big, "text/csv")}
    )
    assert r.status_code == 413
    body = r.json()
    assert body["error"] == "payload_too_large"
    assert "上传内容过大" in body["message"] and "5 MB" in body["message"]
    assert body["detail"] == {"max_bytes": MAX_IMPORT_BYTES}


def test_huge_content_length_is_refused_before_the_body_is_read(client, app):
    # a client announcing 10 GB: 413 without a single byte of the body being pulled
    status, body, pulled = _call(
        app,
        "/addresses/import",
        {"content-type": f"multipart/form-data; boundary={BOUNDARY}", "content-length": str(10 * 1024**3)},
        total_bytes=20 * 1024 * 1024,
        head=_multipart_head(),
    )
    assert status == 413 and body["error"] == "payload_too_large"
    assert "上传内容过大" in body["message"]
    assert pulled == 0


def test_chunked_upload_without_length_is_cut_at_the_limit(app):
    # no Content-Length (chunked transfer): 20 MB offered, reading stops just past the limit
    limit = MAX_IMPORT_BYTES + MULTIPART_OVERHEAD_BYTES
    status, body, pulled = _call(
        app,
        "/addresses/import",
        {"content-type": f"multipart/form-data; boundary={BOUNDARY}", "transfer-encoding": "chunked"},
        total_bytes=20 * 1024 * 1024,
        head=_multipart_head(),
    )
    assert status == 413 and body["error"] == "payload_too_large"
    assert body["detail"] == {"max_bytes": MAX_IMPORT_BYTES}
    assert limit < pulled <= limit + CHUNK


def test_lying_small_content_length_is_cut_at_the_limit(app):
    # a header that claims 1 KB while the body goes on: the stream cap still stops it
    limit = MAX_IMPORT_BYTES + MULTIPART_OVERHEAD_BYTES
    status, body, pulled = _call(
        app,
        "/addresses/import",
        {"content-type": f"multipart/form-data; boundary={BOUNDARY}", "content-length": "1024"},
        total_bytes=20 * 1024 * 1024,
        head=_multipart_head(),
    )
    assert status == 413 and body["error"] == "payload_too_large"
    assert limit < pulled <= limit + CHUNK


def test_geocode_batch_body_is_capped_too(app, client):
    status, body, pulled = _call(
        app,
        "/geocode/batch",
        {"content-type": "application/json", "content-length": str(MAX_BATCH_BYTES + 1)},
        total_bytes=MAX_BATCH_BYTES + 1,
        head=b'["',
    )
    assert status == 413 and body["error"] == "payload_too_large" and pulled == 0
    status, body, pulled = _call(
        app,
        "/geocode/batch",
        {"content-type": "application/json"},
        total_bytes=2 * MAX_BATCH_BYTES,
        head=b'["',
    )
    assert status == 413 and MAX_BATCH_BYTES < pulled <= MAX_BATCH_BYTES + CHUNK
    # a body under the cap reaches the endpoint, which judges it (here: not a list → its own 422)
    r = client.post("/geocode/batch", json={"addresses": "黄浦区中山东一路3号"})
    assert r.status_code == 422 and "addresses" in r.json()["message"]


@pytest.mark.parametrize("value", ["abc", "-5", "1e9"])
def test_malformed_content_length_is_400(client, value):
    r = client.post(
        "/addresses/import",
        content=b"x",
        headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}", "content-length": value},
    )
    assert r.status_code == 400 and "Content-Length" in r.json()["message"]
