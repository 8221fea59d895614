"""H3 aggregation of many districts on Dask (issue 14 §3): partitioned by district on a LocalCluster of two
worker processes, each district's cells equal the single-process answer — `shequ grid h3 --area` on the demo
in PostGIS, and one `h3grid.aggregate` over all the points of a synthetic city."""

from __future__ import annotations

import pytest
import shapely

from grid_builder import h3grid
from grid_builder.province import h3_partition, h3_province, partitions_from_points, run_partitions
from grid_builder.service import h3_for_area

RES = 9


def test_h3_on_dask_equals_h3_for_area_on_the_demo(engine, dask_client):
    got = h3_province(engine, RES, "center", client=dask_client)
    assert len(got) >= 2, "the demo's buildings lie in several districts"
    assert len(dask_client.scheduler_info()["workers"]) == 2
    for code, cells in got.items():
        assert cells == h3_for_area(engine, code, RES, "center")
    assert sum(c["buildings"] for cells in got.values() for c in cells) > 1_000
    assert sum(c["households"] for cells in got.values() for c in cells) > 30_000
    # each worker reading its own district from PostGIS (DATABASE_URL of its environment): the same answers
    assert h3_province(engine, RES, "center", client=dask_client, reader="worker") == got
    # the in-process run of the same partitions (workers=0) is the same answer
    assert h3_province(engine, RES, "center", codes=sorted(got)[:2], workers=0) == {
        k: got[k] for k in sorted(got)[:2]}


def test_h3_on_dask_equals_one_aggregate_on_a_synthetic_city(synth_inputs, synth_city, dask_client):
    districts = [d for d in synth_inputs["districts"]
                 if any(d.geom.intersects(b.geom) for b in synth_city.buildings[:: 10])]
    assert len(districts) >= 2
    points = {
        "buildings": [(p.x, p.y, float(b.households or 0))
                      for b in synth_city.buildings for p in [shapely.point_on_surface(b.geom)]],
        "addresses": [(r.lon, r.lat, 1.0) for r in synth_city.records if r.lon is not None],
    }
    areas = [(d.code, d.geom) for d in districts]
    for mode in ("center", "overlap"):
        parts = partitions_from_points(areas, points, RES)
        assert min(len(p.layers["addresses"]) for p in parts) < len(points["addresses"])  # really cut
        got = dict(run_partitions(h3_partition, parts, RES, mode, client=dask_client))
        for code, geom in areas:
            assert got[code] == h3grid.aggregate(geom, RES, mode, points)  # all points, one process
    total = sum(c["addresses"] for c in h3grid.aggregate(districts[0].geom, RES, "center", points))
    assert total > 0


def test_a_bad_level_or_area_is_refused(engine):
    with pytest.raises(h3grid.H3Error, match="level"):
        h3_province(engine, RES, level="province", workers=0)
    with pytest.raises(Exception, match="不存在"):
        h3_province(engine, RES, codes=["999999"], workers=0)
    with pytest.raises(Exception, match="不存在"):
        h3_province(engine, RES, codes=["999999"], reader="worker", workers=0)
    with pytest.raises(Exception, match="reader"):
        h3_province(engine, RES, reader="nobody", workers=0)
