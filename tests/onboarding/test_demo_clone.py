"""Proof on the demo's own sources: imported through `shequ city import` as a city would hand them, they give
the same roads, buildings and POIs as `shequ demo load` (counts, attributes, geometry within 0.1 m)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely import wkb
from sqlalchemy import text

from tests.onboarding.conftest import run_cli

pytestmark = pytest.mark.usefixtures("clone")

TOL_M = 0.1
_TO_M = Transformer.from_crs(4326, 32651, always_xy=True)


def _rows(engine, table: str, city: bool) -> dict:
    where = "city_id = (SELECT id FROM city WHERE name = '上海演示复刻')" if city else "city_id IS NULL"
    key = "osm_id, kind" if table == "poi" else "osm_id"
    extra = {
        "road": "name, kind, node_ids",
        "building": "name, kind_detail, height_m, floors, households_est",
        "poi": "name",
    }[table]
    with engine.connect() as conn:
        rows = (
            conn.execute(text(f"SELECT {key}, {extra}, ST_AsBinary(geom) AS g FROM {table} WHERE {where}"))
            .mappings()
            .all()
        )
    return {(r["osm_id"], r["kind"]) if table == "poi" else r["osm_id"]: r for r in rows}


def _norm(v):
    """Text is imported trimmed (8 Tilezen POI names end in a space); empty text is no text."""
    return (v.strip() or None) if isinstance(v, str) else v


def _max_distance_m(a: dict, b: dict) -> float:
    worst = 0.0
    for key, ra in a.items():
        ga = shapely.transform(
            wkb.loads(bytes(ra["g"])), lambda c: np.column_stack(_TO_M.transform(c[:, 0], c[:, 1]))
        )
        gb = shapely.transform(
            wkb.loads(bytes(b[key]["g"])), lambda c: np.column_stack(_TO_M.transform(c[:, 0], c[:, 1]))
        )
        worst = max(worst, ga.hausdorff_distance(gb))
    return worst


@pytest.mark.parametrize(
    ("table", "fields"),
    [
        ("road", ("name", "kind", "node_ids")),
        ("building", ("name", "kind_detail", "height_m", "floors", "households_est")),
        ("poi", ("name",)),
    ],
)
def test_same_rows_as_demo_load(engine, city_engine, table, fields):
    demo, city = _rows(engine, table, city=False), _rows(city_engine, table, city=True)
    assert len(demo) > 400
    assert set(city) == set(demo)
    for f in fields:
        diff = [k for k in demo if _norm(demo[k][f]) != _norm(city[k][f])]
        assert not diff, f"{table}.{f} differs for {len(diff)} rows, e.g. {diff[:3]}"
    assert _max_distance_m(demo, city) < TOL_M


def test_list_shows_the_city_and_its_counts(city_db_url, city_engine, clone):
    assert "EPSG:4528" in clone and "GCJ-02" in clone
    res = run_cli(city_db_url, ["city", "list"])
    assert res.exit_code == 0, res.output
    assert "上海演示复刻 [310100]" in res.output and "building 1321" in res.output


def test_reimport_replaces_not_duplicates(city_db_url, city_engine, demo_sources):
    with city_engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM building")).scalar_one()
    res = run_cli(
        city_db_url,
        [
            "city",
            "import",
            "--name",
            "上海演示复刻",
            "--district-code",
            "310100",
            "--layer",
            f"building={demo_sources['buildings']}",
            "--mapping",
            str(demo_sources["mapping"]),
            "--no-steps",
        ],
    )
    assert res.exit_code == 0, res.output
    with city_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM building")).scalar_one() == before
        assert conn.execute(text("SELECT count(*) FROM road")).scalar_one() == 4701  # untouched layer stays


def test_gb18030_address_list_goes_through_the_bulk_address_import(city_engine, clone, demo_sources):
    rows = demo_sources["addresses"].read_bytes().decode("gb18030").splitlines()[1:]
    assert f"导入 imported {len(rows)} standard addresses" in clone
    with city_engine.connect() as conn:
        n, roads = conn.execute(
            text(
                "SELECT count(*), count(*) FILTER (WHERE level = 'road') FROM standard_address "
                "WHERE changed_by = 'shequ city import' AND valid_to IS NULL"
            )
        ).one()
        assert n == len(rows) > 100
        assert (
            conn.execute(
                text("SELECT count(*) FROM standard_address WHERE full_text LIKE '%陆家嘴环路%'")
            ).scalar_one()
            > 1
        )
    assert roads == len({r.split(",")[1] for r in rows if r.split(",")[2] == ""})
