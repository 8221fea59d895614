"""Issue 15, faults: a `kill -9` in the middle of a bulk standard-address import (`shequ address import`, one
transaction, run as a real child process) — of PostgreSQL's postmaster, then of the importing client. After
the server restarts (or the client is gone) nothing of the half-done import is visible, the audit chain
still verifies, and an app created on the same URL answers without a manual step.

The kill is synchronised on what the server shows, not on sleeps: the import's backend in
pg_stat_activity holding a transaction id (it has written rows) that is not committed yet. Runs on an
embedded cluster of its own with only the demo's admin units of 黄浦区 loaded (the session's cluster is
never touched)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_api.auth import audit
from gis_api.db import get_engine
from gis_api.demo import read_admin_units, write_layer
from gis_api.embedded_pg import EmbeddedPostgres
from gis_api.migrate import upgrade
from tests.faultkit import (
    backends,
    counts,
    kill_postmaster,
    roads_csv,
    server_pids,
    throwaway_cluster,
    wait_until,
)

DISTRICT = "310101"  # 黄浦区
ROWS = 600  # an import of ~4-5 s; the kill lands within ~0.1 s of its first write
COUNTED = ("standard_address", "audit_log")


def _csv(tag: str) -> bytes:
    """New roads in 黄浦区 near the Bund, one per row (a road's parent is the district: no other base data)."""
    return roads_csv(f"故障{tag}测试", ROWS, district=DISTRICT)


def _counts(engine) -> dict[str, int]:
    return counts(engine, COUNTED)


def _start_import(cluster: EmbeddedPostgres, csv_path: Path) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": cluster.url(), "SHEQU_DATABASE_URL": cluster.url()}
    return subprocess.Popen(
        [sys.executable, "-m", "gis_api.cli", "address", "import", str(csv_path), "--reason", "故障测试 fault test"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[2],
    )


def _wait_for_open_write(engine, child: subprocess.Popen) -> list[int]:
    """Block until the import's backend holds an uncommitted transaction that has written; every server pid."""
    def writing() -> bool:
        assert child.poll() is None, child.stdout.read().decode() if child.stdout else "import ended early"
        return bool(backends(engine, "backend_xid IS NOT NULL AND xact_start IS NOT NULL"))

    wait_until(writing, "the import's open write transaction")
    return server_pids(engine)


@pytest.fixture(scope="module")
def cluster(shared_data):
    with throwaway_cluster("shequ-faults-") as pg:
        upgrade(pg.url())
        shared = shared_data
        by_code = {u["code"]: u for u in read_admin_units(shared)}
        units, code = [], DISTRICT  # the district and the units above it
        while code:
            units.append(by_code[code])
            code = by_code[code]["parent_code"]
        assert any(u["code"] == DISTRICT and u["geom"] is not None for u in units)
        write_layer(get_engine(pg.url()), "admin_unit", units)
        # an audited write before the faults: the chain has something to verify
        with get_engine(pg.url()).begin() as conn:
            audit.append(conn, audit.AuditEntry(action="fault-test.setup", actor="test-faults",
                                                detail={"rows": ROWS}))
        yield pg


def _assert_untouched(pg: EmbeddedPostgres, before: dict[str, int], tag: str) -> None:
    engine = get_engine(pg.url())
    engine.dispose()  # connections of the killed server are dead; the pool would find that out by itself too
    assert _counts(engine) == before
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM standard_address WHERE components->>'road' LIKE :p"),
                            {"p": f"故障{tag}%"}).scalar_one() == 0
        assert audit.verify(conn) is None
    from gis_api.app import create_app

    with TestClient(create_app(db_url=pg.url()), raise_server_exceptions=False) as client:
        assert client.get("/health").json()["status"] == "ok"
        found = client.get("/grids/locate", params={"lon": 121.49, "lat": 31.24})
        assert found.status_code == 200, found.text


@pytest.mark.timeout(240)
def test_kill_9_of_postgres_mid_import_leaves_nothing(cluster, tmp_path):
    engine = get_engine(cluster.url())
    before = _counts(engine)
    assert before["audit_log"] == 1
    csv_path = tmp_path / "roads.csv"
    csv_path.write_bytes(_csv("S"))
    child = _start_import(cluster, csv_path)
    try:
        pids = _wait_for_open_write(engine, child)
        kill_postmaster(cluster, pids)
        out = child.communicate(timeout=120)[0].decode()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode != 0, out  # the import did not get to its commit
    assert "已导入" not in out
    cluster.start()  # on its own files: crash recovery
    _assert_untouched(cluster, before, "S")


@pytest.mark.timeout(240)
def test_kill_9_of_the_importing_client_leaves_nothing(cluster, tmp_path):
    engine = get_engine(cluster.url())
    before = _counts(engine)
    csv_path = tmp_path / "roads.csv"
    csv_path.write_bytes(_csv("C"))
    child = _start_import(cluster, csv_path)
    try:
        _wait_for_open_write(engine, child)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    # the server rolls the orphaned transaction back when it sees the connection close
    wait_until(lambda: not backends(engine, "backend_xid IS NOT NULL"), "the rollback")
    assert cluster.status().running
    _assert_untouched(cluster, before, "C")


@pytest.mark.timeout(300)
def test_the_same_import_uninterrupted_writes_every_row(cluster, tmp_path):
    """The control: the file the faults interrupted is valid, so an uninterrupted run commits all of it."""
    engine = get_engine(cluster.url())
    before = _counts(engine)
    csv_path = tmp_path / "roads.csv"
    csv_path.write_bytes(_csv("S"))
    child = _start_import(cluster, csv_path)
    out = child.communicate(timeout=240)[0].decode()
    assert child.returncode == 0, out
    after = _counts(engine)
    assert after["standard_address"] - before["standard_address"] == ROWS
    with engine.connect() as conn:
        assert audit.verify(conn) is None
