"""The grids of many communities built in parallel (issue 14: `shequ grid build --all --workers N`): each
community in its own Dask task on a LocalCluster of two worker processes, each worker with its own connection
— the same reports, in the same order, and the same stored grids and micro-grids as one process building
them one after another, on the demo's communities in PostGIS."""

from __future__ import annotations

from sqlalchemy import text

from grid_builder.build import BuildConfig
from grid_builder.service import build_all, derive_boundaries


def _communities(engine, n: int) -> list[str]:
    """The ``n`` active communities holding the most buildings (provisional boundaries derived if none)."""
    sql = """SELECT u.code FROM admin_unit u JOIN building b ON ST_Intersects(u.geom, ST_PointOnSurface(b.geom))
             WHERE u.level = 'community' AND u.valid_to IS NULL GROUP BY u.code ORDER BY count(*) DESC, u.code
             LIMIT :n"""
    with engine.connect() as conn:
        codes = [c for (c,) in conn.execute(text(sql), {"n": n})]
    if len(codes) < n:
        derive_boundaries(engine)
        with engine.connect() as conn:
            codes = [c for (c,) in conn.execute(text(sql), {"n": n})]
    return codes


def _stored(engine, codes: list[str]) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT code, level, community_code, households, ST_AsBinary(geom) FROM grid "
            "WHERE community_code = ANY(:c) AND valid_to IS NULL ORDER BY code"), {"c": codes})]


def _summary(reports) -> list[tuple]:
    return [(r.community_code, r.grids, r.microgrids, r.households, r.in_band, sorted(r.flags)) for r in reports]


def test_grids_built_on_dask_equal_the_one_process_build(engine, dask_client):
    codes = _communities(engine, 4)
    assert len(codes) == 4
    cfg = BuildConfig()
    serial = build_all(engine, cfg, codes=codes)
    stored = _stored(engine, codes)
    assert sum(r.grids for r in serial) >= 4 and not any("failed" in r.flags for r in serial)
    assert {row[2] for row in stored} == set(codes)
    # in reverse order on the cluster: the reports still come back in the order asked
    parallel = build_all(engine, cfg, codes=codes[::-1], client=dask_client)
    assert len(dask_client.scheduler_info()["workers"]) == 2
    assert _summary(parallel) == _summary(serial)[::-1]
    # written anew by the workers (each build closes the current version and writes the next)
    assert all(p.written and p.version == s.version + 1 for p, s in zip(parallel, serial[::-1], strict=True))
    assert _stored(engine, codes) == stored
    # a community that does not exist fails alone, reported in its place, on the cluster too
    mixed = build_all(engine, cfg, codes=[codes[0], "310101999999"], client=dask_client)
    assert [r.community_code for r in mixed] == [codes[0], "310101999999"]
    assert "failed" not in mixed[0].flags and "failed" in mixed[1].flags and "不存在" in mixed[1].messages[0]
