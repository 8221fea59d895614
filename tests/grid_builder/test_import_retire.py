"""A city's real boundaries replace the provisional ones: import retires what they cover (never deletes),
flags the grids that need a rebuild, `build --needs-rebuild` rebuilds just those, the validator finds no
overlap between active units; a second import changes nothing; a bad file writes nothing."""

from __future__ import annotations

import json

import pytest
from shapely.geometry import box, mapping
from shapely.ops import unary_union
from sqlalchemy import text
from typer.testing import CliRunner

from geo.errors import Conflict
from gis_api.errors import status_and_code
from grid_builder import store
from grid_builder.build import BuildConfig
from grid_builder.importer import ImportProblem, import_boundaries, read_boundaries
from grid_builder.service import (
    GridError,
    build_all,
    build_community,
    derive_boundaries,
    unit_issues,
    validate_stored,
)

# GB/T 2260-style codes: 310101 黄浦区 + township 002 + communities 001/002 (outside the provisional 9xx range)
TOWN = "310101002"
COMM_A, COMM_B = TOWN + "001", TOWN + "002"


@pytest.fixture(scope="module")
def demo_units(engine):
    """The provisional demo townships/communities with grids (derived here when this file runs alone)."""
    with engine.connect() as conn:
        have = store.admin_units(conn, "community")
    if not any(u["source"] == "provisional" for u in have):
        derive_boundaries(engine)
        build_all(engine, BuildConfig())
    with engine.connect() as conn:
        towns = [t for t in store.admin_units(conn, "township") if t["code"].startswith("310101")]
        comms = store.admin_units(conn, "community")
    # the provisional township of 黄浦区 with the most communities
    by_town = {t["code"]: [c for c in comms if c["parent_code"] == t["code"]] for t in towns}
    town = max(towns, key=lambda t: len(by_town[t["code"]]))
    assert len(by_town[town["code"]]) >= 3
    return town, by_town[town["code"]]


def _write_city_file(path, town, comms) -> dict[str, list[str]]:
    """Township = the provisional township's area; two communities = unions of its provisional ones."""
    half = len(comms) // 2
    parts = {COMM_A: comms[:half], COMM_B: comms[half:]}
    feats = [
        {
            "type": "Feature",
            "properties": {"code": TOWN, "name": "南京东路街道"},
            "geometry": mapping(unary_union([c["geom"] for c in comms])),
        }
    ]
    for code, name in ((COMM_A, "贵州路社区"), (COMM_B, "宁波路社区")):
        feats.append(
            {
                "type": "Feature",
                "properties": {"code": code, "name": name},
                "geometry": mapping(unary_union([c["geom"] for c in parts[code]])),
            }
        )
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False), encoding="utf-8"
    )
    return {code: [c["code"] for c in cs] for code, cs in parts.items()}


def _snapshot(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT code, source, valid_from, valid_to, properties::text, md5(ST_AsBinary(geom)) FROM admin_unit "
                    "WHERE level IN ('township', 'community') ORDER BY code"
                )
            ).all()
        ]


def _grid_snapshot(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text("SELECT code, version, valid_to, flags FROM grid ORDER BY code, version")
            ).all()
        ]


def test_import_retires_covered_provisional_units_and_rebuild_replaces_their_grids(
    engine, client, demo_units, tmp_path, undo_import
):
    from gis_api.cli import app

    town, comms = demo_units
    old_codes = [c["code"] for c in comms]
    path = tmp_path / "南京东路街道.geojson"
    parts = _write_city_file(path, town, comms)
    assert unit_issues(engine) == []  # the demo's provisional units do not overlap to begin with
    before, grids_before = _snapshot(engine), _grid_snapshot(engine)
    runner = CliRunner()
    try:
        # dry run: says what would be retired, writes nothing
        res = runner.invoke(app, ["grid", "import", str(path), "--dry-run"])
        assert res.exit_code == 0, res.output
        assert "将撤销" in res.output and all(c in res.output for c in [town["code"], *old_codes])
        assert _snapshot(engine) == before and _grid_snapshot(engine) == grids_before

        res = runner.invoke(app, ["grid", "import", str(path), "--by", "测试员"])
        assert res.exit_code == 0, res.output
        assert "1 街道, 2 社区" in res.output and f"已撤销 retired: {1 + len(comms)} 个" in res.output
        assert "--needs-rebuild" in res.output
        with engine.connect() as conn:
            rows = {
                r.code: r
                for r in conn.execute(
                    text("SELECT code, source, valid_to, properties FROM admin_unit WHERE code = ANY(:c)"),
                    {"c": [TOWN, COMM_A, COMM_B, town["code"], *old_codes]},
                ).all()
            }
            # the imported units are active, the provisional ones they cover are retired, rows kept
            assert all(
                rows[c].valid_to is None and rows[c].source == "import" for c in (TOWN, COMM_A, COMM_B)
            )
            for c in [town["code"], *old_codes]:
                assert rows[c].valid_to is not None and rows[c].source == "provisional"
                ret = rows[c].properties["retired"]
                assert ret["by"] == "测试员" and "南京东路街道.geojson" in ret["reason"]
                assert ret["covered_share"] > 0.99
            assert rows[town["code"]].properties["retired"]["replaced_by"] == [TOWN]
            for new, olds in parts.items():
                for c in olds:
                    assert rows[c].properties["retired"]["replaced_by"] == [new]
            # their grids are still there, flagged, until the replacing community is built
            flagged = (
                conn.execute(
                    text(
                        "SELECT DISTINCT community_code FROM grid WHERE valid_to IS NULL AND 'needs_rebuild' = ANY(flags)"
                    )
                )
                .scalars()
                .all()
            )
            assert sorted(flagged) == sorted(old_codes)
            grid_code = conn.execute(
                text(
                    "SELECT code FROM grid WHERE valid_to IS NULL AND level = 'grid' "
                    "AND community_code = :c ORDER BY code LIMIT 1"
                ),
                {"c": old_codes[0]},
            ).scalar_one()
            assert sorted(store.communities_needing_build(conn)) == [COMM_A, COMM_B]
        # no overlap between active units; the validator points at the grids to rebuild
        kinds = [i["kind"] for i in unit_issues(engine)]
        assert "unit_overlap" not in kinds and kinds.count("needs_rebuild") == len(old_codes)
        assert runner.invoke(app, ["grid", "validate"]).exit_code == 1
        st = client.get(f"/grids/{grid_code}/stats").json()
        assert (
            st["needs_rebuild"] is True
            and old_codes[0] in st["rebuild_reason"]
            and COMM_A in st["rebuild_reason"]
        )
        st = client.get(f"/grids/{COMM_A}/stats").json()
        assert st["needs_rebuild"] is True and st["buildings"] == 0
        with pytest.raises(GridError) as exc:
            build_community(engine, old_codes[0], BuildConfig())
        assert isinstance(exc.value, Conflict) and "撤销" in exc.value.message
        assert status_and_code(exc.value)[0] == 409

        # rebuild just the replacing communities
        res = runner.invoke(app, ["grid", "build", "--needs-rebuild"])
        assert res.exit_code == 0, res.output
        assert COMM_A in res.output and COMM_B in res.output and "已关闭" in res.output
        assert not any(
            line.startswith(c) for c in old_codes for line in res.output.splitlines()
        )  # not rebuilt
        with engine.connect() as conn:
            assert (
                conn.execute(
                    text("SELECT count(*) FROM grid WHERE valid_to IS NULL AND community_code = ANY(:c)"),
                    {"c": old_codes},
                ).scalar_one()
                == 0
            )
            assert (
                conn.execute(
                    text("SELECT count(*) FROM grid WHERE community_code = ANY(:c)"), {"c": old_codes}
                ).scalar_one()
                > 0
            )  # closed, not deleted
            # every building of the old communities is now in one current grid of a new community
            n_old = sum(len(store.buildings_in(conn, c["geom"])) for c in comms)
            got = conn.execute(
                text(
                    "SELECT count(*) FROM grid_assignment ga JOIN grid g ON g.code = ga.grid_code AND g.valid_to IS NULL "
                    "WHERE ga.community_code = ANY(:c)"
                ),
                {"c": [COMM_A, COMM_B]},
            ).scalar_one()
            assert got == n_old > 0
            assert store.communities_needing_build(conn) == []
        for c in (COMM_A, COMM_B):
            assert validate_stored(engine, c) == []
        assert unit_issues(engine) == []

        # a second import of the same file is idempotent
        after, grids_after = _snapshot(engine), _grid_snapshot(engine)
        res = runner.invoke(app, ["grid", "import", str(path)])
        assert res.exit_code == 0, res.output
        assert "已撤销 retired: 0 个" in res.output
        assert _snapshot(engine) == after and _grid_snapshot(engine) == grids_after
    finally:
        undo_import(engine, [TOWN, COMM_A, COMM_B])
    assert _snapshot(engine) == before  # the clean-up restored the provisional units exactly
    with engine.connect() as conn:
        assert store.communities_needing_build(conn) == []


def test_partly_covered_units_stay_and_show_as_overlaps(engine, demo_units, tmp_path, undo_import):
    """Below the share a provisional unit stays active; its overlap with the imported one is reported."""
    town, comms = demo_units
    big, small = sorted(comms[:2], key=lambda c: -c["geom"].area)
    code = town["code"] + "801"  # under the provisional township
    path = tmp_path / "one.geojson"
    minx, miny, maxx, maxy = small["geom"].bounds
    west = small["geom"].intersection(box(minx, miny, (minx + maxx) / 2, maxy))
    geom = unary_union([big["geom"], west])  # all of big, the west half of small
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"code": code, "name": "测试社区"},
                        "geometry": mapping(geom),
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    records, problems = read_boundaries(path)
    try:
        rep = import_boundaries(engine, records, dry_run=True, min_share=0.9)
        assert [u["code"] for u in rep["retired"]] == [big["code"]]
        share = {u["code"]: u["share"] for u in rep["partial"]}
        assert 0.05 < share.get(small["code"], 0) < 0.9
        import_boundaries(engine, records, min_share=0.9)
        issues = unit_issues(engine)
        assert any(i["kind"] == "unit_overlap" and set(i["codes"]) == {code, small["code"]} for i in issues)
    finally:
        undo_import(engine, [code])
    assert unit_issues(engine) == []


def test_a_bad_file_writes_nothing(engine, demo_units, tmp_path):
    from gis_api.cli import app

    town, comms = demo_units
    before, grids_before = _snapshot(engine), _grid_snapshot(engine)
    # a good community and one whose township exists nowhere: refused as a whole
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"code": COMM_A, "name": "甲"},
                "geometry": mapping(comms[0]["geom"]),
            },
            {
                "type": "Feature",
                "properties": {"code": TOWN + "003", "name": "乙"},
                "geometry": mapping(comms[1]["geom"]),
            },
        ],
    }
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps(fc), encoding="utf-8")
    res = CliRunner().invoke(app, ["grid", "import", str(path)])
    assert res.exit_code == 1 and "上级" in res.output and TOWN in res.output
    assert len(res.output.strip().splitlines()) == 1  # one-line error
    records, _ = read_boundaries(path)
    with pytest.raises(ImportProblem):
        import_boundaries(engine, records)
    # not GeoJSON at all
    junk = tmp_path / "junk.geojson"
    junk.write_text("{ not json", encoding="utf-8")
    res = CliRunner().invoke(app, ["grid", "import", str(junk)])
    assert res.exit_code == 1 and "无法读取" in res.output
    res = CliRunner().invoke(app, ["grid", "import", str(path), "--min-share", "1.5"])
    assert res.exit_code == 1
    # a write that fails half-way (the last record breaks a constraint after the township and the
    # retirements were written): the whole import is rolled back
    good = tmp_path / "good.geojson"
    _write_city_file(good, town, comms)
    records, _ = read_boundaries(good)
    records[-1].level = "小区"
    with pytest.raises(Exception, match="ck_admin_level"):
        import_boundaries(engine, records)
    assert _snapshot(engine) == before and _grid_snapshot(engine) == grids_before
