"""One error table serves the API and the CLI: the same domain error gets the same status and message."""

from __future__ import annotations

import pytest
import typer
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from geo import errors as ge
from geo.crs import CrsError, normalize_crs
from gis_api.cli import ShequGroup
from gis_api.errors import ERROR_TABLE, install_handlers, status_and_code


class _NoSuchThing(ge.NotFound):
    code = "no_such_thing"


CASES = [
    (ge.BadRequest("坏请求 malformed"), 400, "bad_request"),
    (ge.InvalidInput("面无效 invalid polygon"), 422, "unprocessable"),
    (ge.NotFound("不存在 no such address"), 404, "not_found"),
    (_NoSuchThing("没有 none"), 404, "no_such_thing"),
    (ge.Conflict("重名 name taken"), 409, "conflict"),
    (ge.StaleVersion("版本过期 stale"), 412, "stale_version"),
    (ge.TooLarge("太大 too large"), 413, "payload_too_large"),
    (ge.RateLimited("太快 slow down"), 429, "rate_limited"),
    (ge.Unavailable("不可用 down"), 503, "service_unavailable"),
    (ge.InvalidInput("x", code="bad_polygon"), 422, "bad_polygon"),
]


@pytest.mark.parametrize(("exc", "status", "code"), CASES, ids=lambda v: type(v).__name__ if isinstance(v, Exception) else None)
def test_table_lookup_walks_the_mro(exc, status, code):
    assert status_and_code(exc) == (status, code)


def test_crs_errors_are_bad_input():
    with pytest.raises(CrsError) as info:
        normalize_crs("EPSG:3857")
    assert status_and_code(info.value) == (422, "invalid_coordinates")
    assert isinstance(info.value, ge.InvalidInput) and isinstance(info.value, ValueError)


def test_every_domain_class_has_a_row():
    domain = [c for c in vars(ge).values() if isinstance(c, type) and issubclass(c, ge.ShequError)]
    assert len(domain) >= 10
    assert all(c in ERROR_TABLE for c in domain)


def test_http_and_cli_say_the_same():
    app = FastAPI()
    install_handlers(app)
    cli = typer.Typer(cls=ShequGroup)

    @app.get("/boom/{i}")
    def boom(i: int):
        raise CASES[i][0]

    @cli.command()
    def explode(i: int) -> None:
        raise CASES[i][0]

    @cli.command()
    def fine() -> None:
        typer.echo("ok")

    client = TestClient(app)
    runner = CliRunner()
    for i, (exc, status, code) in enumerate(CASES):
        r = client.get(f"/boom/{i}")
        assert r.status_code == status
        assert r.json()["error"] == code and r.json()["message"] == exc.message
        res = runner.invoke(cli, ["explode", str(i)])
        assert res.exit_code == 1
        assert f"[{code}]" in res.output and exc.message in res.output
    assert runner.invoke(cli, ["fine"]).output.strip() == "ok"
