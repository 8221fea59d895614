"""Bulk geocoding on Dask (issue 14): partitioned on a LocalCluster, the answers equal one process's; an
unreachable scheduler is a clear error naming it."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys

import pytest

from address_registry import synth
from address_registry.bulk import geocode_bulk, partitions
from address_registry.geocoder import Geocoder
from address_registry.noisy import noisy_queries
from geo.errors import Unavailable


def _queries(records, aliases, every: int) -> list[str]:
    active = [r for r in records if r.status == "active"]
    texts = [r.formatted for r in active[::every]]
    texts += [q for _f, q, _c in noisy_queries(active[1::every], aliases, seed=5)]
    return texts + ["", "完全不存在的地方", "上海市"]


def test_partitions_cover_the_rows_in_order():
    parts = partitions([str(i) for i in range(10)], 4)
    assert [start for start, _ in parts] == [0, 4, 8]
    assert [x for _, rows in parts for x in rows] == [str(i) for i in range(10)]
    with pytest.raises(Exception, match="partition size"):
        partitions(["a"], 0)


def test_distributed_equals_single_process_on_the_demo(geocoder, inputs_demo, dask_client):
    texts = _queries(inputs_demo["records"], inputs_demo["aliases"], every=12)
    assert len(texts) > 1_000
    got = geocode_bulk(geocoder, texts, partition_size=200, client=dask_client)
    assert got == geocoder.geocode_many(texts, 1)
    assert len(dask_client.scheduler_info()["workers"]) == 2


def test_distributed_equals_single_process_on_a_synthetic_city(synth_inputs, synth_city, dask_client):
    city = synth_city
    g = Geocoder(city.records, city.aliases, road_lines=synth.road_lines(synth_inputs["roads"]))
    texts = _queries(city.records, city.aliases, every=6)
    single = g.geocode_many(texts, 1)
    assert sum(1 for r in single if r) > 0.9 * len(texts)
    assert geocode_bulk(g, texts, partition_size=250, client=dask_client) == single


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_scheduler_is_named(geocoder):
    address = f"tcp://127.0.0.1:{_closed_port()}"
    with pytest.raises(Unavailable, match=address.replace(".", r"\.")):
        geocode_bulk(geocoder, ["上海市黄浦区中山东一路3号"], scheduler=address)


def test_cli_geocodes_a_csv_on_dask_and_names_a_bad_scheduler(tmp_path, geocoder):
    src = tmp_path / "in.csv"
    texts = ("上海市浦东新区世纪大道1号", "黄浦区 九江路", "完全不存在的地方")
    with open(src, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["编号", "地址"])
        for i, text in enumerate(texts):
            w.writerow([i, text])
    run = [sys.executable, "-m", "gis_api.cli", "geocode", str(src), "-o"]
    on_dask = subprocess.run([*run, str(tmp_path / "b.csv"), "--dask", "--partition-size", "2"],
                             capture_output=True, text=True, env={**os.environ}, timeout=300)
    assert on_dask.returncode == 0, on_dask.stderr
    with open(tmp_path / "b.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["编号"] for r in rows] == ["0", "1", "2"]  # every row, in order, across partitions
    assert rows[0]["address_code"] == geocoder.geocode(texts[0], 1)[0]["address_code"]
    assert rows[1]["level"] == "road" and rows[2]["address_code"] == ""
    address = f"tcp://127.0.0.1:{_closed_port()}"
    bad = subprocess.run([*run, str(tmp_path / "c.csv"), "--scheduler", address], capture_output=True, text=True,
                         env={**os.environ}, timeout=300)
    assert bad.returncode == 1 and address in bad.stderr and "Dask" in bad.stderr


@pytest.fixture(scope="module")
def inputs_demo(engine, registry):
    from address_registry import store

    with engine.connect() as conn:
        return store.load_geocoder_inputs(conn)
