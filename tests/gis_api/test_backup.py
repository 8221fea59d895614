"""Issue 15: `shequ db backup` / `shequ db restore` on the demo city — every table's row count and checksum
survive the round trip; a backup of a newer schema is refused (the target untouched); an older one is
migrated to every head after the restore."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from gis_api.backup import archive_revisions, table_fingerprints
from gis_api.cli import app
from gis_api.db import sqlalchemy_url
from gis_api.migrate import upgrade


def _admin(pg_url):
    return create_engine(make_url(sqlalchemy_url(pg_url)).set(database="postgres"), isolation_level="AUTOCOMMIT")


@pytest.fixture
def scratch(pg_url):
    """URLs of scratch databases on the test server (dropped afterwards)."""
    names: list[str] = []

    def make(name: str) -> str:
        names.append(name)
        return make_url(pg_url).set(database=name).render_as_string(hide_password=False)

    yield make
    admin = _admin(pg_url)
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _engine(url):
    return create_engine(sqlalchemy_url(url))


def _cli(*args):
    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.output


def test_round_trip_keeps_every_table(pg_url, engine, scratch, tmp_path, output_dir):
    before = table_fingerprints(engine)
    t0 = time.perf_counter()
    dump = tmp_path / "demo.dump"
    code, out = _cli("db", "backup", "-o", str(dump), "--database-url", pg_url)
    assert code == 0, out
    assert "backup written" in out and dump.stat().st_size > 100_000
    with engine.connect() as conn:
        assert archive_revisions(dump) == tuple(sorted(conn.execute(text("SELECT version_num FROM alembic_version")).scalars()))

    target = scratch("shequ_restore_roundtrip")
    t1 = time.perf_counter()
    code, out = _cli("db", "restore", str(dump), "--database-url", target, "--yes")
    assert code == 0, out
    t2 = time.perf_counter()
    restored = _engine(target)
    try:
        after = table_fingerprints(restored)
    finally:
        restored.dispose()
    assert len(before) >= 30 and sum(n for n, _ in before.values()) > 10_000  # the demo city, not an empty DB
    assert {t for t, (n, _) in before.items() if n > 0} >= {"building", "road", "admin_unit", "poi"}
    differing = {t: (before.get(t), after.get(t)) for t in set(before) | set(after) if before.get(t) != after.get(t)}
    assert not differing
    # figures for docs/reliability.md (not asserted: timings are no unit-test matter)
    (output_dir / "backup-roundtrip.json").write_text(json.dumps({
        "tables": len(before), "rows": sum(n for n, _ in before.values()), "dump_bytes": dump.stat().st_size,
        "backup_s": round(t1 - t0, 1), "restore_s": round(t2 - t1, 1), "tables_differing": len(differing)}))


def test_restore_refuses_a_newer_schema_and_leaves_the_target(pg_url, scratch, tmp_path):
    # a small database whose schema claims a revision this code does not know
    newer = scratch("shequ_backup_newer")
    target = scratch("shequ_backup_target")
    admin = _admin(pg_url)
    with admin.connect() as conn:
        for url in (newer, target):
            conn.execute(text(f'CREATE DATABASE "{make_url(url).database}"'))
    admin.dispose()
    for url, sql in ((newer, "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY); "
                             "INSERT INTO alembic_version VALUES ('0001_base'), ('9999_from_the_future')"),
                     (target, "CREATE TABLE marker (n int); INSERT INTO marker VALUES (42)")):
        eng = _engine(url)
        with eng.begin() as conn:
            for stmt in sql.split("; "):
                conn.execute(text(stmt))
        eng.dispose()
    dump = tmp_path / "newer.dump"
    assert _cli("db", "backup", "-o", str(dump), "--database-url", newer)[0] == 0

    code, out = _cli("db", "restore", str(dump), "--database-url", target, "--yes")
    assert code == 1
    assert "newer_schema" in out and "9999_from_the_future" in out
    eng = _engine(target)
    with eng.connect() as conn:
        assert conn.execute(text("SELECT n FROM marker")).scalar_one() == 42  # untouched
    eng.dispose()


def test_restore_migrates_an_older_schema(pg_url, scratch, tmp_path):
    older = scratch("shequ_backup_older")
    target = scratch("shequ_backup_older_restored")
    admin = _admin(pg_url)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{make_url(older).database}"'))
    admin.dispose()
    upgrade(older, "0002_addresses")
    dump = tmp_path / "older.dump"
    assert _cli("db", "backup", "-o", str(dump), "--database-url", older)[0] == 0
    assert archive_revisions(dump) == ("0002_addresses",)

    code, out = _cli("db", "restore", str(dump), "--database-url", target, "--yes")
    assert code == 0, out
    eng = _engine(target)
    with eng.connect() as conn:
        versions = set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
        assert conn.execute(text("SELECT to_regclass('public.grid')")).scalar() is not None  # a later migration ran
    eng.dispose()
    with _engine(pg_url).connect() as conn:  # the same revisions as a database migrated from scratch
        assert versions == set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


def test_restore_refuses_a_file_that_is_not_a_backup(pg_url, scratch, tmp_path):
    junk = tmp_path / "junk.dump"
    junk.write_bytes(b"not a dump")
    code, out = _cli("db", "restore", str(junk), "--database-url", scratch("shequ_backup_junk"), "--yes")
    assert code == 1 and "错误" in out
