"""Issue 15, faults: the data folder's disk full. A throw-away embedded cluster whose whole data folder
(PGDATA, WAL included) is a small tmpfs mounted by the test (we run as root; skipped, saying why, when the
mount is refused). After a first import, a filler file takes every byte left; then:

- a write that needs space (`POST /addresses/import`, 300 new roads, one transaction) is refused with
  **507 `disk_full`** and a Chinese message (not a 500), and nothing of it is visible;
- reads continue: `/health`, the address list, OGC features, `/grids/locate` answer 200;
- once the filler is removed, the same app writes again (no restart), and after a restart of the cluster
  every table holds what it held before the fault (row counts and checksums), every B-tree index passes
  `amcheck`, and the audit chain verifies.

Before the fill the current WAL segment is switched, so the full disk is met where PostgreSQL reports it as
an error (extending a table: SQLSTATE 53100) rather than in a WAL write (which PostgreSQL answers by stopping
the server, by design)."""

from __future__ import annotations

import errno
import os
import pwd
import subprocess
import tempfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_api.auth import audit
from gis_api.db import get_engine
from gis_api.demo import read_admin_units, write_layer
from gis_api.migrate import upgrade
from tests.faultkit import counts, roads_csv, throwaway_cluster

DISTRICT = "310101"  # 黄浦区
SIZE_MB = 160
COUNTED = ("standard_address", "audit_log")


def _roads_csv(tag: str, rows: int) -> bytes:
    return roads_csv(f"满盘{tag}测试", rows, district=DISTRICT)


def _fill(folder: Path) -> Path:
    """Write a filler file in ``folder`` until the file system says ENOSPC (1 MiB, then 4 KiB writes)."""
    filler = folder / "filler.bin"
    with open(filler, "wb", buffering=0) as fh:
        for chunk in (1 << 20, 4096, 512):
            block = b"\0" * chunk
            while True:
                try:
                    fh.write(block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    return filler


def _amcheck(engine) -> int:
    """`bt_index_check` on every B-tree index of the public schema (raises on a corrupt one); how many."""
    with engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS amcheck"))
        names = conn.execute(text(
            "SELECT c.oid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE a.amname = 'btree' AND n.nspname = 'public' "
            "AND c.relpersistence = 'p' AND c.relkind = 'i'")).scalars().all()
        for oid in names:
            conn.execute(text("SELECT bt_index_check(:o, true)"), {"o": oid})
    return len(names)


@pytest.fixture
def small_disk_root():
    """A folder whose ``data`` is a tmpfs of SIZE_MB owned by the database's OS user; unmounted after."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs for the full-disk test")
    root = Path(tempfile.mkdtemp(prefix="shequ-disk-"))
    data = root / "data"
    data.mkdir()
    try:
        ent = pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"],
                       check=True, capture_output=True)
        ent = pwd.getpwnam("postgres")
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m,mode=0700,uid={ent.pw_uid},"
                            f"gid={ent.pw_gid}", "tmpfs", str(data)], capture_output=True, text=True)
    if mount.returncode != 0:
        data.rmdir()
        root.rmdir()
        pytest.skip(f"mount -t tmpfs refused here ({mount.stderr.strip() or mount.returncode}): "
                    "the full-disk test needs it")
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", str(data)], capture_output=True)
        subprocess.run(["rm", "-rf", str(root)], capture_output=True)


@pytest.mark.timeout(300)
def test_full_disk_refuses_writes_clearly_keeps_reads_and_corrupts_nothing(small_disk_root, shared_data):
    from gis_api.app import create_app
    from gis_api.auth import roles as r
    from gis_api.auth import store, tokens
    from gis_api.backup import table_fingerprints

    with throwaway_cluster("unused", root=small_disk_root) as cluster:
        url = cluster.url()
        upgrade(url)
        engine = get_engine(url)
        by_code = {u["code"]: u for u in read_admin_units(shared_data)}
        units, code = [], DISTRICT
        while code:
            units.append(by_code[code])
            code = by_code[code]["parent_code"]
        write_layer(engine, "admin_unit", units)
        with engine.begin() as conn:
            user = store.create_user(conn, "disk-admin", r.ADMIN, "Shequ-Disk-Pw-2026", "满盘测试")
            audit.append(conn, audit.AuditEntry(action="fault-test.setup", actor="test-disk", detail={}))
        token, _ = tokens.issue_access_token(f"user:{user['id']}", user["name"], r.ADMIN)
        headers = {"Authorization": f"Bearer {token}"}

        def upload(tag: str, rows: int):
            return client.post("/addresses/import", headers=headers,
                               files={"file": (f"{tag}.csv", _roads_csv(tag, rows), "text/csv")})

        def reads_answer() -> None:
            assert client.get("/health").json()["status"] == "ok"
            listed = client.get("/addresses", headers=headers, params={"limit": 5})
            assert listed.status_code == 200 and listed.json(), listed.text
            feats = client.get("/collections/admin_district/items", params={"limit": 2})
            assert feats.status_code == 200 and feats.json()["features"], feats.text
            assert client.get("/grids/locate", params={"lon": 121.49, "lat": 31.24}).status_code == 200

        with TestClient(create_app(db_url=url), raise_server_exceptions=False) as client:
            first = upload("A", 50)
            assert first.status_code == 201, first.text
            reads_answer()
            with engine.connect() as conn:
                conn.execute(text("SELECT pg_switch_wal()"))
                conn.execute(text("CHECKPOINT"))
            before = table_fingerprints(engine)
            before_counts = counts(engine, COUNTED)

            filler = _fill(cluster.data)
            assert os.statvfs(cluster.data).f_bavail == 0
            full = upload("B", 300)
            assert full.status_code == 507, full.text
            assert full.json()["error"] == "disk_full" and "磁盘已满" in full.json()["message"]
            assert counts(engine, COUNTED) == before_counts  # nothing of the refused import
            reads_answer()
            assert table_fingerprints(engine) == before

            filler.unlink()
            again = upload("B", 300)  # the same app, no restart
            assert again.status_code == 201, again.text
            assert counts(engine, COUNTED)["standard_address"] == before_counts["standard_address"] + 300
        engine.dispose()
        cluster.stop()
        cluster.start()
        engine = get_engine(url)
        after = table_fingerprints(engine)
        changed = {t for t in before if after.get(t) != before[t]}
        # only the control import's tables changed (its addresses, their search rows, its audit entry, the
        # address row counter kept by triggers, migration 0017)
        assert changed <= {"standard_address", "address_alias", "audit_log", "layer_change", "tile_cache",
                           "standard_address_rows"}, changed
        assert _amcheck(engine) > 20
        with engine.connect() as conn:
            assert audit.verify(conn) is None
            assert conn.execute(text("SELECT count(*) FROM standard_address WHERE components->>'road' LIKE '满盘B%'")
                                ).scalar_one() == 300


def test_a_disk_full_error_is_a_507_and_not_a_bad_row(engine):
    """Without a mount (runs everywhere): PostgreSQL's own SQLSTATE 53100 raised in the server maps to 507
    `disk_full` without the server's text, and the bulk importer does not take it for a row's fault — while a
    constraint violation stays one."""
    from sqlalchemy.exc import DBAPIError

    from address_registry.importer import _row_fault
    from gis_api.errors import database_error

    with engine.connect() as conn, pytest.raises(DBAPIError) as full:
        conn.execute(text("DO $$ BEGIN RAISE EXCEPTION 'could not extend file \"base/1/2\": No space left on "
                          "device' USING ERRCODE = 'disk_full'; END $$"))
    status, code, message = database_error(full.value)
    assert (status, code) == (507, "disk_full") and "磁盘已满" in message and "base/1/2" not in message
    assert not _row_fault(full.value)
    with engine.connect() as conn, pytest.raises(DBAPIError) as bad:
        conn.execute(text("SELECT CAST(NULL AS int) AS x INTO TEMP t_nn2; ALTER TABLE t_nn2 ALTER x SET NOT NULL"))
        conn.execute(text("INSERT INTO t_nn2 VALUES (NULL)"))
    assert _row_fault(bad.value)
