"""Bulk import (`shequ address import`, `POST /addresses/import`) with real demo-area addresses:
new house numbers on 中山东一路 (the Bund) beside its real ones, buildings and units below them."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import text

from address_registry.importer import read_rows
from geo.crs import from_wgs84

CHANGED_BY = "test-import"
# through the API, changed_by is the authenticated caller (the `client` fixture's admin), never a form field
API_CALLER = "m-client-admin"
HEADER = ["district", "road", "house_number", "building", "unit", "lon", "lat", "community_code", "aliases"]


def _shequ(*args):
    return subprocess.run(
        [sys.executable, "-m", "gis_api.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=300,
    )


def _csv(rows, header=HEADER) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM standard_address")).scalar_one()


@pytest.fixture(scope="module")
def bund(engine, registry):
    """A real house number on 中山东一路 (黄浦区) and its point, township and community."""
    with engine.connect() as conn:
        row = conn.execute(
            text("""SELECT code, components, ST_X(geom) AS lon, ST_Y(geom) AS lat, community_code
            FROM standard_address WHERE valid_to IS NULL AND status = 'active' AND level = 'house_number'
              AND components->>'road' = '中山东一路' AND components->>'house_number' = '3号'""")
        ).one()
    return dict(row._mapping)


@pytest.fixture(scope="module", autouse=True)
def retire_imported(engine, registry):
    """Leave the shared database as the later tests expect it: imported addresses are retired at the end."""
    yield
    from address_registry import service

    with engine.begin() as conn:
        codes = (
            conn.execute(
                text("""SELECT code FROM standard_address WHERE valid_to IS NULL AND status = 'active'
            AND changed_by = ANY(:by) AND source = 'import' ORDER BY length(code) DESC, code"""),
                {"by": [CHANGED_BY, API_CALLER]},
            )
            .scalars()
            .all()
        )
        for code in codes:
            service.retire_address(conn, code, CHANGED_BY, "test clean-up")
    service.invalidate(engine)


def _valid_rows(bund, numbers=("9101号", "9103号", "9105号"), dlon=0.0):
    lon, lat = bund["lon"] + dlon, bund["lat"]
    rows = []
    for i, n in enumerate(numbers):
        rows.append(
            [
                "310101",
                "中山东一路",
                n,
                "",
                "",
                f"{lon:.7f}",
                f"{lat + 0.00003 * i:.7f}",
                bund["community_code"] if i == 0 else "",
                "外滩测试楼" if i == 0 else "",
            ]
        )
    # a building and a unit under the first new number, found by text from the rows above
    rows.append(["黄浦区", "中山东一路", numbers[0], "1幢", "", f"{lon:.7f}", f"{lat:.7f}", "", ""])
    rows.append(["310101", "中山东一路", numbers[0], "1栋", "2单元", f"{lon:.7f}", f"{lat:.7f}", "", ""])
    return rows


def test_api_import_valid_file_then_geocode(client, engine, bund):
    before = _count(engine)
    data = _csv(_valid_rows(bund))
    dry = client.post(
        "/addresses/import",
        params={"dry_run": "true"},
        data={"changed_by": CHANGED_BY},
        files={"file": ("bund.csv", data, "text/csv")},
    )
    assert dry.status_code == 200, dry.text
    assert dry.json()["dry_run"] is True and len(dry.json()["addresses"]) == 5
    assert _count(engine) == before  # a dry run writes nothing

    r = client.post(
        "/addresses/import",
        data={"changed_by": CHANGED_BY, "reason": "门牌普查"},
        files={"file": ("bund.csv", data, "text/csv")},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["imported"] == 5 and _count(engine) == before + 5
    levels = [a["level"] for a in body["addresses"]]
    assert levels == ["house_number"] * 3 + ["building", "unit"]
    assert [a["row"] for a in body["addresses"]] == [2, 3, 4, 5, 6]
    by_row = {a["row"]: a for a in body["addresses"]}
    # the unit hangs below the imported building, which hangs below the imported house number
    assert by_row[6]["address_code"].startswith(by_row[5]["address_code"][:-1])
    assert by_row[5]["address_code"].startswith(by_row[2]["address_code"][:-1])
    for q, row in (("黄浦区中山东一路9103号", 3), ("中山东一路9101号1幢2单元", 6), ("外滩测试楼", 2)):
        top = client.get("/geocode", params={"q": q}).json()["results"][0]
        assert top["address_code"] == by_row[row]["address_code"], q
    # one audit entry for the import, committed with the addresses, naming every created code
    with engine.connect() as conn:
        logged = conn.execute(text("SELECT actor, record_ids FROM audit_log WHERE action = 'address.import' "
                                   "ORDER BY id DESC LIMIT 1")).one()
    assert logged.actor == API_CALLER and set(logged.record_ids) == {a["address_code"] for a in body["addresses"]}
    one = client.get(f"/addresses/{by_row[2]['address_code']}").json()
    assert (
        one["source"] == "import" and one["changed_by"] == API_CALLER and one["change_reason"] == "门牌普查"
    )
    assert one["community_code"] == bund["community_code"]


def test_one_bad_row_writes_nothing_and_lists_every_bad_row(client, engine, bund):
    before = _count(engine)
    rows = _valid_rows(bund, numbers=("9201号", "9203号", "9205号"))
    rows.append(
        ["310101", "中山东一路", "3号", "", "", f"{bund['lon']:.7f}", f"{bund['lat']:.7f}", "", ""]
    )  # exists
    rows.append(
        ["310115", "中山东一路", "9207号", "", "", f"{bund['lon']:.7f}", f"{bund['lat']:.7f}", "", ""]
    )
    rows.append(
        ["310101", "中山东一路", "9209号", "", "", "121.50", "31.25", "", ""]
    )  # across the river: 浦东
    rows.append(["310101", "中山东一路", "9211号", "", "", "东经121度", f"{bund['lat']:.7f}", "", ""])
    rows.append(
        ["310101", "中山东一路", "9213号", "", "", f"{bund['lon']:.7f}", f"{bund['lat']:.7f}", "", ""]
    )
    r = client.post(
        "/addresses/import",
        data={"changed_by": CHANGED_BY},
        files={"file": ("bad.csv", _csv(rows), "text/csv")},
    )
    assert r.status_code == 422, r.text
    errors = r.json()["detail"]["errors"]
    by_row = {e["row"]: e for e in errors}
    assert sorted(by_row) == [7, 8, 9, 10]  # the five good rows and the last one are not reported
    assert by_row[7]["field"] == "full_text" and "same normalised text" in by_row[7]["reason"]
    assert by_row[8]["field"] == "parent"  # no 中山东一路 in 浦东新区
    assert by_row[9]["field"] == "lon/lat" and "district" in by_row[9]["reason"]
    assert by_row[10]["field"] == "lon"
    assert _count(engine) == before
    res = client.get("/geocode", params={"q": "中山东一路9201号"}).json()["results"]
    assert not res or res[0]["level"] != "house_number"


def test_gcj02_input_is_converted(client, engine, bund):
    wlon, wlat = bund["lon"] + 0.0001, bund["lat"] + 0.0001
    glon, glat = (float(v) for v in from_wgs84(wlon, wlat, "gcj02"))
    assert abs(glon - wlon) > 0.002  # GCJ-02 is some 500 m off here: a missed conversion cannot pass
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [glon, glat]},
        "properties": {"district": "310101", "road": "中山东一路", "house_number": "9301号"},
    }
    data = json.dumps({"type": "FeatureCollection", "features": [feature]}, ensure_ascii=False).encode()
    r = client.post(
        "/addresses/import",
        params={"crs": "gcj02"},
        data={"changed_by": CHANGED_BY},
        files={"file": ("gcj.geojson", data, "application/geo+json")},
    )
    assert r.status_code == 201, r.text
    code = r.json()["addresses"][0]["address_code"]
    with engine.connect() as conn:
        dist = conn.execute(
            text("""SELECT ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)
            ::geography) FROM standard_address WHERE code = :c AND valid_to IS NULL"""),
            {"c": code, "lon": wlon, "lat": wlat},
        ).scalar_one()
    assert dist < 1.0


def test_oversized_upload_413(client, engine):
    from gis_api.routers.addresses import MAX_IMPORT_BYTES

    big = b"district,road,house_number,lon,lat\n" + b"#" * MAX_IMPORT_BYTES
    r = client.post(
        "/addresses/import", data={"changed_by": CHANGED_BY}, files={"file": ("big.csv", big, "text/csv")}
    )
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"


def test_unreadable_file_422(client):
    r = client.post(
        "/addresses/import",
        data={"changed_by": CHANGED_BY},
        files={"file": ("x.geojson", b'{"type": "Feature"}', "application/json")},
    )
    assert r.status_code == 422 and "FeatureCollection" in r.json()["message"]
    r = client.post(
        "/addresses/import",
        data={"changed_by": CHANGED_BY},
        files={"file": ("x.csv", "道路,门牌号\n中山东一路,1号\n".encode(), "text/csv")},
    )
    assert r.status_code == 422 and "lat" in r.json()["message"]


def test_cli_import_all_or_nothing(tmp_path, engine, bund):
    rows = _valid_rows(bund, numbers=("9401号", "9403号", "9405号"))
    bad = tmp_path / "bad.csv"
    bad.write_bytes(_csv([*rows, ["310101", "中山东一路", "9407号", "3幢", "", "", "", "", ""]]))
    before = _count(engine)
    proc = _shequ("address", "import", str(bad), "--changed-by", CHANGED_BY)
    assert proc.returncode != 0
    assert "导入错误 import errors" in proc.stderr and "nothing was imported" in proc.stderr
    # the table names the row and the fields: missing lon and lat on row 7
    assert any(
        line.strip().startswith("│") and " 7 " in line and "lon" in line for line in proc.stderr.splitlines()
    )
    assert _count(engine) == before

    good = tmp_path / "good.csv"
    good.write_bytes(_csv(rows))
    dry = _shequ("address", "import", str(good), "--dry-run", "--changed-by", CHANGED_BY)
    assert dry.returncode == 0, dry.stderr
    assert "dry run" in dry.stdout and _count(engine) == before
    proc = _shequ("address", "import", str(good), "--changed-by", CHANGED_BY)
    assert proc.returncode == 0, proc.stderr
    assert "imported 5 address(es)" in proc.stdout and _count(engine) == before + 5


def test_cli_gcj02_option(tmp_path, engine, bund):
    wlon, wlat = bund["lon"] - 0.0001, bund["lat"] - 0.0001
    glon, glat = (float(v) for v in from_wgs84(wlon, wlat, "gcj02"))
    path = tmp_path / "gcj.csv"
    path.write_bytes(_csv([["310101", "中山东一路", "9501号", "", "", f"{glon:.8f}", f"{glat:.8f}", "", ""]]))
    proc = _shequ("address", "import", str(path), "--crs", "gcj02", "--changed-by", CHANGED_BY)
    assert proc.returncode == 0, proc.stderr
    with engine.connect() as conn:
        dist = conn.execute(
            text("""SELECT ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)
            ::geography) FROM standard_address WHERE valid_to IS NULL AND components->>'road' = '中山东一路'
              AND components->>'house_number' = '9501号'"""),
            {"lon": wlon, "lat": wlat},
        ).scalar_one()
    assert dist < 1.0


def test_read_rows_field_checks():
    data = _csv(
        [
            ["", "中山东一路", "9号", "", "", "121.49", "31.24", "", ""],
            ["310101", "", "9号", "", "", "121.49", "31.24", "", ""],
            ["310101", "中山东一路", "", "", "2单元", "121.49", "31.24", "", ""],
        ]
    )
    rows = read_rows(data, "x.csv")
    assert [(e.row, e.field) for r in rows for e in r.errors] == [
        (2, "district"),
        (3, "road"),
        (4, "house_number"),
    ]
    heads = "区县,道路,门牌号,经度,纬度,别名\n310101,中山东一路,9号,121.49,31.24,甲；乙\n".encode("gb18030")
    (row,) = read_rows(heads, "cn.csv")
    assert row.level == "house_number" and row.aliases == ["甲", "乙"] and not row.errors
