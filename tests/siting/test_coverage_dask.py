"""Province-wide coverage on Dask (issue 14 §3): partitioned by district on a LocalCluster of two worker
processes, the answers equal the single-process ones — `shequ coverage` over the whole demo in PostGIS, and one
unpartitioned coverage of a synthetic city — building by building."""

from __future__ import annotations

import socket

import numpy as np
import shapely
from typer.testing import CliRunner

from geo.cluster import run_partitions
from geo.demo_files import read_roads, read_tilezen
from siting import service
from siting.province import (
    CoveragePartition,
    coverage_partition,
    coverage_province,
    merge,
    partitions_in_memory,
)
from siting.service import to_metric

TYPE = "公交车站"  # 56 stops in the demo, 500 m walking radius (GB 50180-2018)


def _same(a: dict, b: dict) -> None:
    assert a["summary"] == b["summary"]
    for k in ("building_id", "covered", "facility_id"):
        np.testing.assert_array_equal(a["buildings"][k], b["buildings"][k])
    np.testing.assert_array_equal(a["buildings"]["distance_m"], b["buildings"]["distance_m"])


def test_coverage_on_dask_equals_the_whole_demo_in_one_process(engine, dask_client):
    for distance in ("walk", "line"):
        got = coverage_province(engine, TYPE, distance=distance, client=dask_client)
        s = got["summary"]
        assert s["partitions"] >= 2 and len(s["by_area"]) >= 2
        if distance == "line":  # the same partitions one after another in this process (cheap by line)
            _same(got, coverage_province(engine, TYPE, distance=distance, workers=0))
        else:  # each worker reading its own district from PostGIS
            _same(got, coverage_province(engine, TYPE, distance=distance, client=dask_client, reader="worker"))
        # the whole demo at once (`shequ coverage --type 公交车站`), unpartitioned: the same buildings covered
        with engine.connect() as conn:
            whole = service.coverage_analysis(conn, TYPE, distance=distance)
        feats = [f["properties"] for f in whole["layers"]["buildings"]["features"]]
        assert sorted(p["id"] for p in feats) == got["buildings"]["building_id"].tolist()
        by_id = {p["id"]: p for p in feats}
        b = got["buildings"]
        for i, covered, fac, dist in zip(b["building_id"], b["covered"], b["facility_id"], b["distance_m"],
                                         strict=True):
            p = by_id[int(i)]
            assert p["covered"] == bool(covered)
            assert p["facility_id"] == (int(fac) if covered else None)
            assert p["distance_m"] == (round(float(dist), 2) if covered else None)
        assert s["households"] == whole["summary"]["households"] > 30_000
        assert s["covered_households"] == whole["summary"]["covered_households"] > 0
        assert 0 < s["covered_share"] < 1


def test_coverage_on_dask_equals_one_unpartitioned_run_on_a_synthetic_city(
        shared_data, synth_inputs, synth_city, dask_client):
    blds = [b for b in synth_city.buildings if (b.households or 0) > 0]
    ids = np.array([b.id for b in blds], dtype=np.int64)
    xy = to_metric([(p.x, p.y) for p in (shapely.point_on_surface(b.geom) for b in blds)])
    hh = np.array([float(b.households) for b in blds])
    stops = [p for p in read_tilezen(shared_data)["pois"] if p["kind"] == "bus_stop"]  # real stops
    site_id = np.arange(1, len(stops) + 1, dtype=np.int64)
    site_xy = to_metric([(p["geom"].x, p["geom"].y) for p in stops])
    ways = [(r["node_ids"], to_metric(np.asarray(r["geom"].coords))) for r in read_roads(shared_data)
            if r["kind"] not in ("motorway", "motorway_link")]
    areas = [(d.code, d.name, shapely.transform(d.geom, to_metric)) for d in synth_inputs["districts"]]
    for distance in ("walk", "line"):
        parts = partitions_in_memory(areas, ids, xy, hh, site_id, site_xy, ways if distance == "walk" else None,
                                     500.0)
        used = [p for p in parts if len(p.building_id)]
        assert len(used) >= 2 and all(len(p.site_id) < len(site_id) for p in used)  # really cut
        got = merge(run_partitions(coverage_partition, parts, 500.0, distance, client=dask_client),
                    "公交车站", "bus_stop", 500.0, distance)
        whole = coverage_partition(CoveragePartition("all", "全市", ids, xy, hh, site_id, site_xy,
                                                     ways if distance == "walk" else None), 500.0, distance)
        order = np.argsort(ids)
        assert got["summary"]["buildings"] == len(blds)
        np.testing.assert_array_equal(got["buildings"]["building_id"], ids[order])
        np.testing.assert_array_equal(got["buildings"]["covered"], whole["covered"][order])
        np.testing.assert_array_equal(got["buildings"]["facility_id"], whole["facility_id"][order])
        np.testing.assert_allclose(got["buildings"]["distance_m"], whole["distance_m"][order], rtol=1e-9)
        assert got["summary"]["covered_households"] == int(whole["covered_households"]) > 0
        assert got["summary"]["households"] == int(whole["households"])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_runs_both_jobs_and_names_a_bad_scheduler(engine, tmp_path):
    from gis_api.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["province", "coverage", "--type", TYPE, "--distance", "line", "--workers", "0", "--out",
                              str(tmp_path / "c.csv")])
    assert res.exit_code == 0, res.output
    assert "covered_share" in res.output and (tmp_path / "c.csv").read_text(encoding="utf-8-sig").count("\n") >= 3
    res = runner.invoke(app, ["province", "h3", "--res", "8", "--workers", "0", "--out", str(tmp_path / "h.json")])
    assert res.exit_code == 0, res.output
    assert "个分区" in res.output and '"area_code"' in (tmp_path / "h.json").read_text(encoding="utf-8")
    address = f"tcp://127.0.0.1:{_closed_port()}"
    res = runner.invoke(app, ["province", "coverage", "--type", TYPE, "--scheduler", address])
    assert res.exit_code == 1 and address in res.output and "Dask" in res.output
