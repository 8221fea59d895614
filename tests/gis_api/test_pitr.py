"""Issue 15: continuous archiving and a restore to a point in time, on an embedded cluster — the procedure
docs/reliability.md describes (WAL archive + base backup + recovery_target_time), run for real: a row
written after the target moment is gone, the rows before it are there."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from gis_api.db import sqlalchemy_url
from gis_api.embedded_pg import EmbeddedPostgres, free_port


def _own(cluster: EmbeddedPostgres, path: Path) -> None:
    """Hand ``path`` (recursively) to the server's OS user when we run as root."""
    run_as = cluster._run_as()
    if not run_as:
        return
    ent = pwd.getpwnam(run_as)
    for p in [path, *path.rglob("*")]:
        os.chown(p, ent.pw_uid, ent.pw_gid)


def _append_conf(cluster: EmbeddedPostgres, lines: list[str]) -> None:
    with open(cluster.data / "postgresql.auto.conf", "a") as fh:
        fh.write("\n".join(lines) + "\n")


@pytest.mark.timeout(300)
def test_restore_to_a_point_in_time():
    root = Path(tempfile.mkdtemp(prefix="shequ-pitr-"))
    os.chmod(root, 0o755)  # the server user must reach the archive folder
    source = EmbeddedPostgres(root / "source", free_port())
    restored = EmbeddedPostgres(root / "restored", free_port())
    archive = root / "wal-archive"
    try:
        source.init()
        archive.mkdir()
        _own(source, archive)
        _append_conf(source, ["wal_level = replica", "archive_mode = on",
                              f"archive_command = 'test ! -f {archive}/%f && cp %p {archive}/%f'"])
        source.start()
        eng = create_engine(sqlalchemy_url(source.url()))
        with eng.begin() as conn:
            conn.execute(text("CREATE TABLE ledger (n int PRIMARY KEY, note text)"))
            conn.execute(text("INSERT INTO ledger VALUES (1, 'before the base backup')"))
        base = root / "base"
        base.mkdir(mode=0o700)
        _own(source, base)
        source._cmd([str(source.bin_dir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(source.port),
                     "-U", source.user, "-D", str(base), "-X", "stream", "-Fp", "-c", "fast"], password=source.password())
        with eng.begin() as conn:
            conn.execute(text("INSERT INTO ledger VALUES (2, 'after the base backup, before the target')"))
        time.sleep(1.0)
        with eng.begin() as conn:
            target = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
        time.sleep(1.0)
        with eng.begin() as conn:
            conn.execute(text("INSERT INTO ledger VALUES (3, 'the mistake, after the target')"))
            last = conn.execute(text("SELECT pg_walfile_name(pg_current_wal_lsn())")).scalar_one()
            conn.execute(text("SELECT pg_switch_wal()"))
        deadline = time.time() + 60
        while not (archive / last).exists() and time.time() < deadline:
            time.sleep(0.3)
        assert (archive / last).exists(), "the WAL segment holding the target was not archived"
        eng.dispose()
        source.stop()

        # restore: the base backup as the data folder, the archive replayed up to the target moment
        restored.root.mkdir(parents=True)
        shutil.copytree(base, restored.data)
        shutil.copy(source.password_file, restored.password_file)
        _append_conf(restored, [f"unix_socket_directories = '{restored.socket_dir}'", "archive_mode = off",
                                f"restore_command = 'cp {archive}/%f %p'",
                                f"recovery_target_time = '{target.isoformat()}'",
                                "recovery_target_action = 'promote'"])
        (restored.data / "recovery.signal").touch()
        _own(restored, restored.root)
        os.chmod(restored.data, 0o700)
        restored.start()
        eng = create_engine(sqlalchemy_url(restored.url()))
        # the server accepts connections while it still replays; promotion follows reaching the target
        deadline = time.time() + 60
        while True:
            with eng.connect() as conn:
                rows = conn.execute(text("SELECT n FROM ledger ORDER BY n")).scalars().all()
                in_recovery = conn.execute(text("SELECT pg_is_in_recovery()")).scalar_one()
            if rows == [1, 2] and not in_recovery or time.time() > deadline:
                break
            time.sleep(0.2)
        eng.dispose()
        assert rows == [1, 2]  # the row of the base backup, the row replayed from WAL; not the mistake
        assert in_recovery is False  # promoted: open for writes again
    finally:
        for cluster in (restored, source):
            try:
                cluster.stop()
            except Exception:
                pass
        shutil.rmtree(root, ignore_errors=True)
