"""The demo city in PostGIS: counts match the data README, loading twice changes nothing, CRS is right."""

import subprocess
import sys

from sqlalchemy import text

from gis_api.demo import households_estimate, load_demo

EXPECTED = {"road": 4701, "building": 1321, "poi": 493, "demo_address_point": 182}


def counts(engine):
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("admin_unit", "road", "building", "poi", "water", "railway", "demo_address_point")}


def test_counts_match_data_readme(engine):
    c = counts(engine)
    for table, n in EXPECTED.items():
        assert c[table] == n, table
    with engine.connect() as conn:
        names = conn.execute(text("SELECT count(DISTINCT name) FROM road WHERE name IS NOT NULL")).scalar_one()
        assert names == 818  # README: 818 unique road names
        districts = dict(conn.execute(text(
            "SELECT code, name FROM admin_unit WHERE code IN ('310101','310115')")).all())
        assert districts == {"310101": "黄浦区", "310115": "浦东新区"}


def test_load_twice_changes_nothing(engine, shared_data):
    before = counts(engine)
    with engine.connect() as conn:
        ids_before = conn.execute(text("SELECT array_agg(id ORDER BY osm_id) FROM building")).scalar_one()
    load_demo(engine, shared_data)
    assert counts(engine) == before
    with engine.connect() as conn:
        assert conn.execute(text("SELECT array_agg(id ORDER BY osm_id) FROM building")).scalar_one() == ids_before


def test_district_boundaries_converted_from_gcj02(engine):
    """Amap's GCJ-02 district polygons must be converted before meeting WGS84 OSM buildings.

    Landmarks near district borders decide it: left in GCJ-02 (~450 m off) the convention centre on the
    Pudong bank falls in 黄浦区 and 外滩源 on the Bund in 虹口区.
    """
    expected = {"上海国际会议中心": "310115", "万向大厦": "310115", "外滩源": "310101", "真光大楼": "310101",
                "沙美大楼": "310101", "瑞康公寓": "310109"}
    with engine.connect() as conn:
        rows = dict(conn.execute(text("""
            SELECT b.name, a.code FROM building b JOIN admin_unit a ON a.level = 'district'
            AND ST_Contains(a.geom, ST_PointOnSurface(b.geom)) WHERE b.name = ANY(:names)"""),
            {"names": list(expected)}).all())
        assert rows == expected
        outside = conn.execute(text("""
            SELECT count(*) FROM building b WHERE NOT EXISTS (SELECT 1 FROM admin_unit a
            WHERE a.level = 'district' AND ST_Contains(a.geom, ST_PointOnSurface(b.geom)))""")).scalar_one()
        assert outside == 0
        srids = conn.execute(text("SELECT DISTINCT ST_SRID(geom) FROM building")).scalars().all()
        assert srids == [4326]
        parent = conn.execute(text("SELECT parent_code FROM admin_unit WHERE code='310101'")).scalar_one()
        assert parent == "310100"


def test_geometries_valid_and_indexed(engine):
    with engine.connect() as conn:
        invalid = conn.execute(text("SELECT count(*) FROM building WHERE NOT ST_IsValid(geom)")).scalar_one()
        assert invalid == 0
        gist = conn.execute(text(
            "SELECT count(*) FROM pg_indexes WHERE indexdef ILIKE '%USING gist%' AND tablename IN "
            "('admin_unit','road','building','poi','water','railway','demo_address_point')")).scalar_one()
        assert gist == 7


def test_households_rule():
    assert households_estimate("apartments", 30.0, 900.0) == (10, 100)
    assert households_estimate("commercial", 30.0, 900.0) == (10, 0)
    assert households_estimate(None, 9.0, 900.0) == (3, 18)  # 60 % of 2700 m² / 90
    assert households_estimate(None, 60.0, 900.0) == (20, 40)  # tower: 20 %


def test_demo_load_cli_missing_data_says_so(pg_url, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gis_api.cli", "demo", "load", "--data-dir", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "demo data not found" in proc.stderr
