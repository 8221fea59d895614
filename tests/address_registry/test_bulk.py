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


def test_distributed_equals_single_process_on_the_demo(geocoder, inputs_demo):
    texts = _queries(inputs_demo["records"], inputs_demo["aliases"], every=9)
    assert len(texts) > 1_500
    assert geocode_bulk(geocoder, texts, workers=2, partition_size=300) == geocoder.geocode_many(texts, 1)


def test_distributed_equals_single_process_on_a_synthetic_city(shared_data):
    data = synth.inputs_from_files(shared_data)
    city = synth.grow_city(data["roads"], data["districts"], 6_000, seed=11, admin_names=data["admin_names"])
    g = Geocoder(city.records, city.aliases, road_lines=synth.road_lines(data["roads"]))
    texts = _queries(city.records, city.aliases, every=5)
    single = g.geocode_many(texts, 1)
    assert sum(1 for r in single if r) > 0.9 * len(texts)
    assert geocode_bulk(g, texts, workers=2, partition_size=500) == single


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_scheduler_is_named(geocoder):
    address = f"tcp://127.0.0.1:{_closed_port()}"
    with pytest.raises(Unavailable, match=address.replace(".", r"\.")):
        geocode_bulk(geocoder, ["上海市黄浦区中山东一路3号"], scheduler=address)


def test_cli_geocodes_a_csv_on_dask_and_names_a_bad_scheduler(tmp_path, registry):
    src = tmp_path / "in.csv"
    with open(src, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["地址"])
        for text in ("上海市浦东新区世纪大道1号", "黄浦区 九江路", "完全不存在的地方"):
            w.writerow([text])
    run = [sys.executable, "-m", "gis_api.cli", "geocode", str(src), "-o"]
    plain = subprocess.run([*run, str(tmp_path / "a.csv")], capture_output=True, text=True, env={**os.environ},
                           timeout=300)
    on_dask = subprocess.run([*run, str(tmp_path / "b.csv"), "--dask", "--partition-size", "2"],
                             capture_output=True, text=True, env={**os.environ}, timeout=300)
    assert plain.returncode == 0 and on_dask.returncode == 0, on_dask.stderr
    assert (tmp_path / "a.csv").read_text(encoding="utf-8") == (tmp_path / "b.csv").read_text(encoding="utf-8")
    address = f"tcp://127.0.0.1:{_closed_port()}"
    bad = subprocess.run([*run, str(tmp_path / "c.csv"), "--scheduler", address], capture_output=True, text=True,
                         env={**os.environ}, timeout=300)
    assert bad.returncode == 1 and address in bad.stderr and "Dask" in bad.stderr


@pytest.fixture(scope="module")
def inputs_demo(engine, registry):
    from address_registry import store

    with engine.connect() as conn:
        return store.load_geocoder_inputs(conn)
