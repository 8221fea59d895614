"""Named siting scenarios (versioned, never deleting another), comparison, candidate CSVs with CRS
checks, and reports: the PDF is rendered to PNG with pdftoppm and shows the map and the table."""

import io
import secrets
import shutil
import subprocess

import pytest
from sqlalchemy import text

from siting import documents


@pytest.fixture(scope="module")
def planner(role_headers):
    return role_headers["planner"]


@pytest.fixture(scope="module")
def two_versions(client, planner, jurisdictions):
    name = f"幼儿园方案-{secrets.token_hex(3)}"
    base = {"name": name, "area_code": jurisdictions["community"], "facility_type": "幼儿园", "model": "mclp",
            "distance": "line", "cost_per_site": 350}
    a = client.post("/analysis/scenarios", headers=planner, json={**base, "new_sites": 1})
    assert a.status_code == 201, a.text
    b = client.post("/analysis/scenarios", headers=planner, json={**base, "new_sites": 3})
    assert b.status_code == 201, b.text
    return a.json(), b.json()


def test_saving_again_adds_a_version_and_keeps_the_first(client, planner, two_versions):
    a, b = two_versions
    assert (a["scenario"]["version"], b["scenario"]["version"]) == (1, 2)
    assert a["summary"]["new_sites"] == 1 and b["summary"]["new_sites"] == 3
    listed = client.get("/analysis/scenarios", headers=planner, params={"name": a["scenario"]["name"]}).json()
    assert [s["version"] for s in listed] == [2, 1]
    first = client.get(f"/analysis/scenarios/{a['scenario']['id']}", headers=planner).json()
    assert first["summary"]["new_sites"] == 1 and first["sites"]["features"]


def test_compare_two_scenarios(client, planner, two_versions):
    a, b = two_versions
    r = client.get("/analysis/scenarios/compare", headers=planner,
                   params={"a": a["scenario"]["id"], "b": b["scenario"]["id"]})
    assert r.status_code == 200, r.text
    rows = {row["key"]: row for row in r.json()["rows"]}
    assert rows["new_sites"]["b_minus_a"] == 2
    assert rows["cost"]["a"] == 350 and rows["cost"]["b"] == 1050
    assert rows["covered_after"]["b"] >= rows["covered_after"]["a"]  # more sites never cover fewer (MCLP)
    assert r.json()["layers"]["b_sites"]["features"]
    same = client.get("/analysis/scenarios/compare", headers=planner,
                      params={"a": a["scenario"]["id"], "b": a["scenario"]["id"]})
    assert same.status_code == 422


def test_posted_candidate_points_and_csv(client, planner, jurisdictions, engine):
    with engine.connect() as conn:
        pts = conn.execute(text(
            "SELECT ST_X(ST_PointOnSurface(b.geom)) x, ST_Y(ST_PointOnSurface(b.geom)) y FROM building b "
            "JOIN admin_unit a ON a.code = :c AND ST_Intersects(a.geom, b.geom) ORDER BY b.id LIMIT 4"),
            {"c": jurisdictions["community"]}).all()
    csv_text = "id,lon,lat\n" + "".join(f"c{i},{p.x:.7f},{p.y:.7f}\n" for i, p in enumerate(pts))
    r = client.post("/analysis/scenarios", headers=planner, json={
        "name": f"上传候选点-{secrets.token_hex(3)}", "area_code": jurisdictions["community"],
        "facility_type": "幼儿园", "model": "mclp", "new_sites": 2, "candidates": ["points"], "points_csv": csv_text,
        "keep_existing": False, "distance": "line"})
    assert r.status_code == 201, r.text
    kinds = {f["properties"]["kind"] for f in r.json()["layers"]["sites"]["features"]}
    assert kinds == {"point"}


def _bad_cases(jurisdictions):
    c = jurisdictions["community"]
    base = {"facility_type": "幼儿园", "area_code": c, "distance": "line"}
    return [
        ("p above candidates", {**base, "new_sites": 5, "candidates": ["points"],
                                "points": [[121.4905, 31.2400], [121.4910, 31.2402]], "keep_existing": False},
         422, "p larger"),
        ("radius 0", {**base, "new_sites": 1, "radius_m": 0}, 422, "radius"),
        ("csv missing columns", {**base, "new_sites": 1, "candidates": ["points"], "points_csv": "id,x1,y1\na,1,2\n"},
         422, "缺少列"),
        ("csv in metres", {**base, "new_sites": 1, "candidates": ["points"],
                           "points_csv": "id,x,y\na,351234.5,3456789.0\n"}, 422, "坐标系"),
        ("csv elsewhere in China", {**base, "new_sites": 1, "candidates": ["points"],
                                    "points_csv": "id,lon,lat\na,116.39,39.91\n"}, 422, "wrong CRS"),
        ("unknown area", {**base, "area_code": "999999999999", "new_sites": 1}, 404, "999999999999"),
        ("empty name", {**base, "new_sites": 1, "name": ""}, 422, "name"),
    ]


@pytest.mark.parametrize("case", range(7))
def test_bad_input_saves_nothing(client, planner, engine, jurisdictions, case):
    label, body, status, needle = _bad_cases(jurisdictions)[case]
    body = {"name": f"坏输入-{secrets.token_hex(3)}", **body}
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM siting_scenario")).scalar_one()
    r = client.post("/analysis/scenarios", headers=planner, json=body)
    assert r.status_code == status, (label, r.text)
    assert needle in r.text, (label, r.text)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM siting_scenario")).scalar_one() == before


def test_area_without_households_is_a_clear_error(client, planner, engine):
    with engine.begin() as conn:  # a district boundary far from the demo buildings
        conn.execute(text("DELETE FROM admin_unit WHERE code = '310199999999'"))
        conn.execute(text(
            "INSERT INTO admin_unit (code, name, level, source, geom) VALUES ('310199999999', '测试空区', 'community', 'test', "
            "ST_Multi(ST_MakeEnvelope(121.30, 31.10, 121.31, 31.11, 4326)))"))
    try:
        r = client.post("/analysis/coverage", headers=planner,
                        json={"facility_type": "幼儿园", "community_code": "310199999999"})
        assert r.status_code == 422 and "住户" in r.json()["message"]
        r = client.post("/analysis/scenarios", headers=planner, json={
            "name": "空区", "facility_type": "幼儿园", "area_code": "310199999999", "new_sites": 1})
        assert r.status_code == 422 and "住户" in r.json()["message"]
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM admin_unit WHERE code = '310199999999'"))


def test_scenarios_are_for_planners(client, anon_client, role_headers, two_versions):
    sid = two_versions[0]["scenario"]["id"]
    assert anon_client.get(f"/analysis/scenarios/{sid}").status_code == 401
    assert client.get(f"/analysis/scenarios/{sid}", headers=role_headers["grid_manager"]).status_code == 403


def _png_colour_pixels(png: bytes, colour: str, tol: int = 30) -> int:
    from PIL import Image

    r0, g0, b0 = int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)
    import numpy as np

    px = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=int)
    return int((np.abs(px - np.array([r0, g0, b0])) < tol).all(axis=2).sum())


def _render(pdf: bytes, tmp_path, name: str) -> bytes:
    src = tmp_path / f"{name}.pdf"
    src.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "60", "-f", "1", "-l", "1", "-png", str(src), str(tmp_path / name)],
                   check=True, timeout=60)
    return next(tmp_path.glob(f"{name}*.png")).read_bytes()


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils (pdftoppm) not installed")
def test_scenario_pdf_shows_map_and_table(client, planner, two_versions, tmp_path, output_dir):
    sid = two_versions[1]["scenario"]["id"]
    r = client.get(f"/analysis/scenarios/{sid}/report.pdf", headers=planner)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    pdf = r.content
    assert b"/FontFile2" in pdf  # the TrueType CJK font is embedded
    png = _render(pdf, tmp_path, "scenario")
    (output_dir / "siting").mkdir(parents=True, exist_ok=True)
    (output_dir / "siting" / "scenario-report.png").write_bytes(png)
    assert _png_colour_pixels(png, documents.PDF_PLANNED) > 20  # the planned sites on the map
    assert _png_colour_pixels(png, documents.PDF_CONTEXT) > 500  # the buildings under them
    text_out = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, timeout=60).stdout
    text_out = text_out.decode("utf-8", "replace")
    assert "方案覆盖住户" in text_out and "设施点位" in text_out  # the tables, in Chinese


def test_scenario_csv_and_geopackage(client, planner, two_versions, tmp_path):
    sid = two_versions[1]["scenario"]["id"]
    csv_r = client.get(f"/analysis/scenarios/{sid}/report.csv", headers=planner)
    assert csv_r.status_code == 200
    lines = csv_r.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("site,status") and len(lines) >= 4
    gpkg = client.get(f"/analysis/scenarios/{sid}/report.gpkg", headers=planner)
    assert gpkg.status_code == 200 and gpkg.content[:15] == b"SQLite format 3"
    import pyogrio

    path = tmp_path / "s.gpkg"
    path.write_bytes(gpkg.content)
    df = pyogrio.read_dataframe(path, layer="sites")
    assert len(df) == len(lines) - 1 and df.crs.to_epsg() == 4326


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils (pdftoppm) not installed")
def test_coverage_reports(client, planner, jurisdictions, tmp_path):
    body = {"facility_type": "幼儿园", "community_code": jurisdictions["community"], "distance": "line",
            "radius_m": 600}
    pdf = client.post("/analysis/coverage/report.pdf", headers=planner, json=body)
    assert pdf.status_code == 200, pdf.text
    png = _render(pdf.content, tmp_path, "coverage")
    assert _png_colour_pixels(png, documents.PDF_COVERED) + _png_colour_pixels(png, documents.PDF_UNCOVERED) > 500
    csv_r = client.post("/analysis/coverage/report.csv", headers=planner, json=body)
    assert csv_r.status_code == 200 and "households" in csv_r.content.decode("utf-8-sig").splitlines()[0]
    bad = client.post("/analysis/coverage/report.pdf", headers=planner, json={**body, "radius_m": -1})
    assert bad.status_code == 422


def test_cli_writes_the_scenario_report(two_versions, tmp_path):
    from typer.testing import CliRunner

    from gis_api.cli import app

    sid = two_versions[0]["scenario"]["id"]
    r = CliRunner().invoke(app, ["siting", "report", str(sid), "-o", str(tmp_path)])
    assert r.exit_code == 0, r.output
    pdf = next(tmp_path.glob("scenario-*.pdf")).read_bytes()
    assert pdf[:5] == b"%PDF-" and b"/FontFile2" in pdf
    assert next(tmp_path.glob("scenario-*.gpkg")).stat().st_size > 0
    r = CliRunner().invoke(app, ["siting", "report", "987654321", "-o", str(tmp_path)])
    assert r.exit_code == 1 and "987654321" in r.output


def test_coverage_of_a_drawn_area(client, planner, jurisdictions, engine):
    with engine.connect() as conn:
        env = conn.execute(text("SELECT ST_AsGeoJSON(ST_Envelope(geom)) FROM admin_unit WHERE code = :c"),
                           {"c": jurisdictions["community"]}).scalar_one()
    import json

    drawn = json.loads(env)
    r = client.post("/analysis/coverage", headers=planner, json={"facility_type": "幼儿园", "area": drawn,
                                                                  "distance": "line", "include_buildings": False})
    assert r.status_code == 200, r.text
    s = r.json()["summary"]
    assert s["area_level"] == "drawn" and s["households"] > 0 and s["by_area"][0]["name"] == "绘制范围"
    line = {"type": "LineString", "coordinates": [[121.49, 31.23], [121.50, 31.24]]}
    huge = {"type": "Polygon", "coordinates": [[[100, 20], [120, 20], [120, 40], [100, 40], [100, 20]]]}
    for bad, needle in ((line, "面"), (huge, "平方公里"), ({"type": "Polygon"}, "GeoJSON")):
        r = client.post("/analysis/coverage", headers=planner, json={"facility_type": "幼儿园", "area": bad})
        assert r.status_code == 422 and needle in r.json()["message"], r.text
    both = client.post("/analysis/coverage", headers=planner, json={
        "facility_type": "幼儿园", "area": drawn, "community_code": jurisdictions["community"]})
    assert both.status_code == 422
