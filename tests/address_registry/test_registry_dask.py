"""The registry of many districts planned on Dask (issue 14 §3): the houses, buildings and rooms of each
district planned in its own task on a LocalCluster of two worker processes give the plan of one process —
the same records (codes, order, fields), aliases and counts — on the demo's tables in PostGIS, on a synthetic
city, built from scratch and rebuilt over an existing registry; and `shequ province registry` writes nothing
new over what `shequ address build` wrote."""

from __future__ import annotations

import socket

from typer.testing import CliRunner

from address_registry import store
from address_registry.build import emission_partitions, plan_houses, plan_registry
from address_registry.province import plan_registry_on_dask


def _same(got, whole) -> None:
    assert len(got.records) == len(whole.records)
    assert [r.code for r in got.records] == [r.code for r in whole.records]
    assert got.records == whole.records
    assert got.aliases == whole.aliases
    assert got.stats == whole.stats


def _really_cut(existing, inputs) -> None:
    hp = plan_houses(existing=existing, **{k: v for k, v in inputs.items() if k != "landuse"})
    parts = emission_partitions(hp)
    assert len(parts) >= 2, "the houses lie in several districts"
    assert len({p.district for p in parts}) == len(parts)
    assert max(len(p.houses) for p in parts) < len(hp.ordered)
    # a part's book holds only its own district's codes
    for p in parts:
        assert all(code.startswith(p.district) for code in p.book.by_key.values())


def test_registry_on_dask_equals_the_one_process_plan_on_the_demo(engine, registry, dask_client):
    with engine.connect() as conn:
        inputs = store.load_build_inputs(conn)
        existing = store.all_current(conn)
    assert len(existing) > 5_000
    # rebuilt over the registry in PostGIS: existing codes kept, new ones continued
    whole = plan_registry(existing=existing, **inputs)
    got = plan_registry_on_dask(existing=existing, client=dask_client, **inputs)
    assert len(dask_client.scheduler_info()["workers"]) == 2
    _same(got, whole)
    _really_cut(existing, inputs)
    # built from scratch: every code issued anew, the same ones
    fresh = plan_registry(**inputs)
    assert {r.level for r in fresh.records} >= {"road", "house_number", "building", "room", "compound"}
    _same(plan_registry_on_dask(client=dask_client, **inputs), fresh)


def test_registry_on_dask_equals_the_one_process_plan_on_a_synthetic_city(synth_inputs, synth_city, dask_client):
    inputs = {
        "districts": synth_inputs["districts"],
        "roads": synth_inputs["roads"],
        "buildings": synth_city.buildings,
        "admin_names": synth_inputs["admin_names"],
        "landuse": synth_city.compounds,
    }
    first = plan_registry(**inputs)
    _same(plan_registry_on_dask(client=dask_client, **inputs), first)
    assert len(first.records) > 3_000
    # the city changes: every 9th building is gone, the rest re-planned over the first registry
    inputs["buildings"] = [b for i, b in enumerate(synth_city.buildings) if i % 9]
    whole = plan_registry(existing=first.records, **inputs)
    got = plan_registry_on_dask(existing=first.records, client=dask_client, **inputs)
    _same(got, whole)
    kept = {r.code for r in got.records} & {r.code for r in first.records}
    assert len(got.records) < len(first.records) and len(kept) > 0.8 * len(got.records)  # codes reused
    _really_cut(first.records, inputs)
    # the same partitions run in this process (workers=0) give the same plan
    _same(plan_registry_on_dask(existing=first.records, workers=0, **inputs), whole)


def _count(output: str, label: str) -> int:
    line = next(x for x in output.splitlines() if x.startswith(label))
    return int(line.split()[-1])


def test_province_registry_cli_writes_what_address_build_wrote(engine, registry):
    from gis_api.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["address", "build"])
    assert res.exit_code == 0, res.output
    # the workers write (default; here the partitions run in this process and stage through their own
    # connection), and the records travel back to this process (--writer driver)
    for args in ([], ["--writer", "driver"]):
        res = runner.invoke(app, ["province", "registry", "--workers", "0", *args])
        assert res.exit_code == 0, res.output
        assert _count(res.output, "新增 created") == 0
        assert _count(res.output, "新版本 new versions") == 0
        assert _count(res.output, "未变 unchanged") > 5_000
    with engine.connect() as conn:
        assert store.staging_tables(conn) == []
    res = runner.invoke(app, ["province", "registry", "--writer", "scheduler"])
    assert res.exit_code != 0 and "writer" in res.output
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    res = runner.invoke(app, ["province", "registry", "--scheduler", address])
    assert res.exit_code == 1 and address in res.output and "Dask" in res.output
