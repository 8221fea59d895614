"""Layer exports, opened with the tools office and desktop users have: GDAL (pyogrio) and openpyxl.

Every format of the same query must hold the same features, with the Chinese attribute text intact.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import orjson
import pytest
from sqlalchemy import text

BUND = "121.484,31.235,121.492,31.242"  # the Bund, Nanjing East Road end


def _expected(client, layer: str, query: dict) -> dict:
    r = client.get(f"/collections/{layer}/items", params={**query, "limit": 10000})
    assert r.status_code == 200, r.text
    fc = r.json()
    assert fc["numberMatched"] == len(fc["features"])
    return {f["id"]: f for f in fc["features"]}


def _export(client, layer: str, fmt: str, query: dict, tmp_path: Path) -> Path:
    r = client.get(f"/collections/{layer}/export", params={**query, "format": fmt})
    assert r.status_code == 200, r.text
    assert "attachment" in r.headers["content-disposition"]
    ext = r.headers["content-disposition"].split('filename="')[1].split('"')[0].rsplit(".", 1)[1]
    path = tmp_path / f"{layer}.{ext}"
    path.write_bytes(r.content)
    return path


def _read_gdal(path: Path):
    import pyogrio

    if path.suffix == ".geojson":  # the feature id is the GeoJSON "id", GDAL's FID
        df = pyogrio.read_dataframe(path, fid_as_index=True)
        df["feature_id"] = df.index
        return df

    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            stem = path.stem
            assert {f"{stem}.shp", f"{stem}.shx", f"{stem}.dbf", f"{stem}.prj", f"{stem}.cpg"} <= names
            assert zf.read(f"{stem}.cpg").decode().strip().upper() == "UTF-8"
            zf.extractall(path.parent / "shp")
        path = path.parent / "shp" / f"{stem}.shp"
    return pyogrio.read_dataframe(path)


@pytest.mark.parametrize("fmt", ["gpkg", "shp", "geojson", "kml"])
def test_gdal_formats_hold_the_same_features_and_chinese_text(client, tmp_path, fmt):
    query = {"bbox": BUND}
    want = _expected(client, "building", query)
    named = {fid: f["properties"]["name"] for fid, f in want.items() if f["properties"]["name"]}
    assert len(want) > 20 and any(any("\u4e00" <= ch <= "\u9fff" for ch in n) for n in named.values())
    df = _read_gdal(_export(client, "building", fmt, query, tmp_path))
    assert len(df) == len(want)
    assert df.crs is not None and df.crs.to_epsg() == 4326
    name_col = "Name" if fmt == "kml" else "name"
    id_col = "feature_id" if fmt != "shp" else "feature_id"[:10]
    got = dict(zip(df[id_col].astype(int), df[name_col], strict=True)) if fmt != "kml" else None
    if got is not None:
        assert {k: v for k, v in got.items() if isinstance(v, str) and v} == named
    else:  # KML: the label field names the placemarks
        assert sorted(v for v in df[name_col] if isinstance(v, str) and v) == sorted(named.values())
    # geometry survives: the union of areas is the same to a few square metres
    import shapely
    from shapely.geometry import shape

    area_want = sum(shape(f["geometry"]).area for f in want.values())  # square degrees: same either side
    assert abs(shapely.area(df.geometry.values).sum() - area_want) < 1e-9 + area_want * 1e-6


def test_csv_is_utf8_with_bom_and_opens_in_gdal(client, tmp_path):
    import pyogrio

    query = {"kind": "primary"}
    want = _expected(client, "road", query)
    assert len(want) > 10
    path = _export(client, "road", "csv", query, tmp_path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel / WPS read it as UTF-8
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == len(want)
    assert {int(r["feature_id"]): r["name"] for r in rows} == {
        fid: (f["properties"]["name"] or "") for fid, f in want.items()}
    assert all(r["wkt"].startswith(("LINESTRING", "MULTILINESTRING")) for r in rows)
    assert any("路" in r["name"] for r in rows)
    df = pyogrio.read_dataframe(path, GEOM_POSSIBLE_NAMES="wkt", KEEP_GEOM_COLUMNS="NO")
    assert len(df) == len(want) and df.geometry.notna().all()
    assert sorted(df["name"].fillna("")) == sorted(r["name"] for r in rows)


def test_xlsx_opens_in_openpyxl_with_chinese_text_and_a_column_sheet(client, tmp_path):
    from openpyxl import load_workbook

    want = _expected(client, "poi", {})
    path = _export(client, "poi", "xlsx", {}, tmp_path)
    wb = load_workbook(path, read_only=True)
    assert wb.sheetnames == ["兴趣点", "字段说明"]
    rows = list(wb["兴趣点"].iter_rows(values_only=True))
    header, body = rows[0], rows[1:]
    assert header == ("feature_id", "osm_id", "kind", "name", "lon", "lat")
    assert len(body) == len(want)
    by_id = {r[0]: r for r in body}
    for fid, f in want.items():
        row = by_id[fid]
        assert (row[3] or None) == (f["properties"]["name"] or None)
        lon, lat = f["geometry"]["coordinates"]
        assert abs(row[4] - lon) < 1e-6 and abs(row[5] - lat) < 1e-6
    titles = {r[0]: r[1] for r in wb["字段说明"].iter_rows(values_only=True) if r and r[0]}
    assert titles["name"] == "名称" and titles["lon"].startswith("经度")


def test_export_honours_cql2_filter_and_datetime(client, tmp_path):
    want = _expected(client, "building", {"filter": "height_m > 50 AND name LIKE '%大厦%'"})
    assert 0 < len(want)
    path = _export(client, "building", "geojson", {"filter": "height_m > 50 AND name LIKE '%大厦%'"}, tmp_path)
    fc = orjson.loads(path.read_bytes())
    assert {f["id"] for f in fc["features"]} == set(want)
    assert all("大厦" in f["properties"]["name"] and f["properties"]["height_m"] > 50 for f in fc["features"])


def test_internal_layer_export_needs_staff(anon_client, client, role_headers, engine):
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM street_block")).scalar_one()
    r = anon_client.get("/collections/street_block/export", params={"format": "geojson"})
    assert r.status_code == 401
    r = anon_client.get("/collections/street_block/export", params={"format": "geojson"},
                        headers=role_headers["planner"])
    assert r.status_code == 200 and r.headers["cache-control"].startswith("private")
    assert len(r.json()["features"]) == n
    # what a role may export is exactly what the items route shows it
    r2 = anon_client.get("/collections/building/export", params={"format": "geojson", "bbox": BUND})
    items = anon_client.get("/collections/building/items", params={"bbox": BUND, "limit": 10000}).json()
    assert r2.json()["features"] == items["features"]


@pytest.mark.parametrize(("params", "param"), [
    ({"format": "dwg"}, "format"),
    ({"format": "csv", "bbox": "1,2,3"}, "bbox"),
    ({"format": "csv", "colour": "red"}, "colour"),
    ({"format": "csv", "filter": "nosuch = 1"}, "filter"),
    ({"format": "csv", "filter": "name = "}, "filter"),
    ({"format": "csv", "height_m": "tall"}, "height_m"),
])
def test_bad_export_parameters_are_400_naming_the_parameter(client, params, param):
    r = client.get("/collections/building/export", params=params)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["detail"]["parameter"] == param
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["message"])


def test_unknown_layer_export_is_404(client):
    assert client.get("/collections/nosuch/export").status_code == 404


def test_cli_export_writes_a_file_gdal_opens(client, tmp_path):
    import pyogrio
    from typer.testing import CliRunner

    from gis_api.cli import app

    out = tmp_path / "poi.gpkg"
    r = CliRunner().invoke(app, ["export", "poi", "-f", "gpkg", "-o", str(out), "--filter", "kind = 'restaurant'"])
    assert r.exit_code == 0, r.output
    df = pyogrio.read_dataframe(out)
    want = _expected(client, "poi", {"kind": "restaurant"})
    assert len(df) == len(want) > 0
    assert sorted(df["name"].fillna("")) == sorted((f["properties"]["name"] or "") for f in want.values())
    bad = CliRunner().invoke(app, ["export", "poi", "-f", "dwg"])
    assert bad.exit_code == 1 and "format" in bad.output
