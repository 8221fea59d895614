"""Bad input: each file a city might hand over wrongly gives `错误 error [code]: …`, exit 1, and nothing of
the import is written (not even the layers of the same command that were fine)."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import geopandas as gpd
import pytest
from sqlalchemy import text

from tests.onboarding.conftest import run_cli

NAME = "坏数据测试"
TABLES = ("road", "building", "poi", "water", "railway", "demo_address_point")


@pytest.fixture(scope="module")
def bad_dir(tmp_path_factory, tilezen) -> Path:
    d = tmp_path_factory.mktemp("bad-sources")
    b = tilezen["buildings"][:60]
    base = gpd.GeoDataFrame(
        {"osm_id": [r["osm_id"] for r in b], "name": [r["name"] or "外滩建筑" for r in b]},
        geometry=[r["geom"] for r in b],
        crs="EPSG:4326",
    )
    # a projected Shapefile with no .prj: its CRS is unknown
    with warnings.catch_warnings():  # pyogrio warns that the file will have no CRS: that is the point
        warnings.simplefilter("ignore", UserWarning)
        base.to_crs("EPSG:4528").set_crs(None, allow_override=True).to_file(
            d / "no_prj.shp", driver="ESRI Shapefile"
        )
    # CGCS2000 / 3° GK CM 120°E, labelled as CM 123°E (EPSG:4550): the city lands in the East China Sea
    base.to_crs("EPSG:4549").set_crs("EPSG:4550", allow_override=True).to_file(
        d / "wrong_zone.gpkg", driver="GPKG"
    )
    base.to_crs("EPSG:4528").to_file(d / "good.gpkg", driver="GPKG")
    # GB18030 attributes with a .cpg that says UTF-8
    base.to_file(d / "gb18030.shp", driver="ESRI Shapefile", encoding="GB18030")
    (d / "gb18030.cpg").write_text("UTF-8", encoding="ascii")
    with open(d / "no_coords.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["名称", "类型"], ["外滩派出所", "police"], ["黄浦公园", "park"]])
    with open(d / "pois_gb18030.csv", "w", newline="", encoding="gb18030") as fh:
        csv.writer(fh).writerows(
            [["名称", "类型", "经度", "纬度"], ["外滩派出所", "police", "121.49", "31.24"]]
        )
    (d / "no_roads.osm").write_text(
        '<?xml version="1.0" encoding="UTF-8"?><osm version="0.6">'
        '<node id="1" lat="31.24" lon="121.49"/><node id="2" lat="31.241" lon="121.49"/>'
        '<node id="3" lat="31.241" lon="121.491"/>'
        '<way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="1"/><tag k="building" v="yes"/></way></osm>',
        encoding="utf-8",
    )
    (d / "missing_column.yaml").write_text("building:\n  levels: 层数\n", encoding="utf-8")
    return d


def _counts(engine) -> dict:
    with engine.connect() as conn:
        out = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}
        out["city"] = conn.execute(
            text("SELECT count(*) FROM city WHERE name = :n"), {"n": NAME}
        ).scalar_one()
    return out


CASES = {
    "unknown_crs": ["--layer", "building={d}/no_prj.shp"],
    "crs_out_of_area": ["--layer", "building={d}/wrong_zone.gpkg"],
    "no_geometry": ["--layer", "poi={d}/no_coords.csv"],
    "mapping_column_missing": ["--layer", "building={d}/good.gpkg", "--mapping", "{d}/missing_column.yaml"],
    "no_roads": ["--osm", "{d}/no_roads.osm"],
    "garbled_text": ["--layer", "building={d}/gb18030.shp"],
    "bad_layer_argument": ["--layer", "buildings={d}/good.gpkg"],
    "unreadable_file": ["--layer", "building={d}/missing.gpkg"],
}


@pytest.mark.parametrize("code", list(CASES))
def test_bad_file_refused_and_nothing_written(city_db_url, city_engine, bad_dir, shared_data, code):
    before = _counts(city_engine)
    args = [a.format(d=bad_dir) for a in CASES[code]]
    if code != "no_roads":  # a good layer in the same command is not written either
        args += [
            "--osm",
            str(shared_data / "shanghai-bund" / "shanghai_center_roads_overpass.osm"),
            "--osm-layers",
            "road",
        ]
    res = run_cli(
        city_db_url, ["city", "import", "--name", NAME, "--district-code", "310100", "--no-steps", *args]
    )
    assert res.exit_code == 1, res.output
    assert f"错误 error [{code}]" in res.output, res.output
    assert _counts(city_engine) == before


def test_messages_name_the_fix(city_db_url, bad_dir):
    res = run_cli(
        city_db_url,
        [
            "city",
            "import",
            "--name",
            NAME,
            "--district-code",
            "310100",
            "--no-steps",
            "--layer",
            f"building={bad_dir}/no_prj.shp",
        ],
    )
    assert "--crs" in res.output
    res = run_cli(
        city_db_url,
        [
            "city",
            "import",
            "--name",
            NAME,
            "--district-code",
            "310100",
            "--no-steps",
            "--layer",
            f"building={bad_dir}/wrong_zone.gpkg",
        ],
    )
    assert "60 of 60 features" in res.output and "km away" in res.output
    res = run_cli(
        city_db_url,
        [
            "city",
            "import",
            "--name",
            NAME,
            "--district-code",
            "310100",
            "--no-steps",
            "--layer",
            f"building={bad_dir}/gb18030.shp",
        ],
    )
    assert "GB18030" in res.output


def test_gb18030_csv_read_as_utf8_is_refused_but_detected_without_a_declaration(
    city_db_url, city_engine, bad_dir
):
    before = _counts(city_engine)
    res = run_cli(
        city_db_url,
        [
            "city",
            "import",
            "--name",
            NAME,
            "--district-code",
            "310100",
            "--no-steps",
            "--encoding",
            "utf-8",
            "--layer",
            f"poi:wgs84={bad_dir}/pois_gb18030.csv",
        ],
    )
    assert res.exit_code == 1 and "错误 error [garbled_text]" in res.output
    assert _counts(city_engine) == before
    res = run_cli(
        city_db_url,
        [
            "city",
            "import",
            "--name",
            NAME,
            "--district-code",
            "310100",
            "--no-steps",
            "--layer",
            f"poi:wgs84={bad_dir}/pois_gb18030.csv",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "encoding GB18030" in res.output
    with city_engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT name FROM poi WHERE city_id = (SELECT id FROM city WHERE name = :n)"),
                {"n": NAME},
            ).scalar_one()
            == "外滩派出所"
        )
    assert run_cli(city_db_url, ["city", "remove", NAME]).exit_code == 0
    assert _counts(city_engine) == before


def test_unknown_district_and_mode_clash(city_db_url, bad_dir):
    res = run_cli(
        city_db_url,
        [
            "city",
            "import",
            "--name",
            NAME,
            "--district-code",
            "999999",
            "--no-steps",
            "--layer",
            f"building={bad_dir}/good.gpkg",
        ],
    )
    assert res.exit_code == 1 and "[unknown_district]" in res.output
    res = run_cli(
        city_db_url,
        [
            "city",
            "import",
            "--name",
            NAME,
            "--outside-china",
            "--district-code",
            "310101",
            "--layer",
            f"building={bad_dir}/good.gpkg",
        ],
    )
    assert res.exit_code == 1 and "[bad_mode]" in res.output


def test_demo_rows_are_not_taken_over_by_a_city(pg_url, engine, shared_data):
    """In the demo's own database the demo's roads belong to the demo: importing them as a city is refused
    before anything is written (no city row either)."""
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM road WHERE city_id IS NULL")).scalar_one()
    osm = shared_data / "shanghai-bund" / "shanghai_center_roads_overpass.osm"
    res = run_cli(pg_url, ["city", "import", "--name", NAME, "--district-code", "310100", "--no-steps",
                           "--osm", str(osm), "--osm-layers", "road"])  # fmt: skip
    assert res.exit_code == 1 and "错误 error [rows_of_another_city]" in res.output and "demo" in res.output
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM road WHERE city_id IS NULL")).scalar_one() == before
        assert not conn.execute(text("SELECT count(*) FROM city")).scalar_one()
