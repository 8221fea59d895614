"""Backups of the whole database (issue 15): ``pg_dump`` custom format, restored with ``pg_restore``.

The schema version travels inside the dump: the ``alembic_version`` table (one row per feature head) is
part of it, and `archive_revisions` reads it back from the archive without restoring anything. A restore
refuses an archive whose schema is newer than this code (a revision the migration scripts do not know),
restores into a freshly created database (the old one is dropped: a restore is all or nothing) and then
migrates an older schema up to every head.

`table_fingerprints` gives every table's row count and an order-independent checksum of its rows, so a
round trip can be checked table by table.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from geo.errors import Conflict, InvalidInput, Unavailable
from gis_api.db import sqlalchemy_url


@dataclass(frozen=True)
class BackupInfo:
    """What a backup file holds: its path, size and the schema revisions (alembic heads) in it."""

    path: Path
    size_bytes: int
    revisions: tuple[str, ...]


def _tool(name: str) -> str:
    """The path of a PostgreSQL client tool (``pg_dump``, ``pg_restore``): the embedded cluster's first."""
    from gis_api.embedded_pg import find_pg_bin

    try:
        found = find_pg_bin() / name
        if found.exists():
            return str(found)
    except Exception:  # no server binaries: fall back to the client on PATH
        pass
    on_path = shutil.which(name)
    if on_path is None:
        raise Unavailable(f"找不到 {name}（请安装 postgresql-client） {name} not found: install postgresql-client")
    return on_path


def _libpq(url: str) -> str:
    """``url`` as libpq takes it (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _run(args: list[str], what: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "PGCONNECT_TIMEOUT": "10"})
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise Unavailable(f"{what}失败 {what} failed: {last}")
    return proc


def known_revisions() -> set[str]:
    """Every revision of this code's migration scripts."""
    from alembic.script import ScriptDirectory

    from gis_api.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config("postgresql://unused/unused"))
    return {rev.revision for rev in script.walk_revisions()}


def archive_revisions(path: Path) -> tuple[str, ...]:
    """The schema revisions recorded in a dump (its ``alembic_version`` rows), read without restoring."""
    proc = _run([_tool("pg_restore"), "--data-only", "--table=alembic_version", "-f", "-", str(path)],
                "读取备份 reading the backup")
    rows, inside = [], False
    for line in proc.stdout.splitlines():
        if line.startswith("COPY ") and "alembic_version" in line:
            inside = True
        elif inside and line == "\\.":
            inside = False
        elif inside and line.strip():
            rows.append(line.strip())
    if not rows:
        raise InvalidInput(f"{path} 不是本系统的备份（没有 alembic_version） not a Shequ backup: no schema version in it",
                           code="not_a_backup")
    return tuple(sorted(rows))


def backup(url: str, out: Path) -> BackupInfo:
    """Dump the database at ``url`` to ``out`` (custom format, compressed, no owners or privileges)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    _run([_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", "--file", str(partial),
          "--dbname", _libpq(url)], "备份 backup")
    partial.replace(out)  # a crash mid-dump never leaves a file that looks complete
    return BackupInfo(out, out.stat().st_size, archive_revisions(out))


def _recreate_database(url: str) -> None:
    """Drop (closing its sessions) and create again the database of ``url``, empty."""
    target = make_url(sqlalchemy_url(url))
    name = target.database
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()


def restore(url: str, path: Path) -> BackupInfo:
    """Replace the database at ``url`` by the backup ``path``, then migrate it to every head.

    Refused (nothing touched) when the backup's schema is newer than this code."""
    if not path.is_file():
        raise InvalidInput(f"备份文件不存在 no backup file {path}", code="not_a_backup")
    revisions = archive_revisions(path)
    unknown = sorted(set(revisions) - known_revisions())
    if unknown:
        raise Conflict(f"备份的数据库结构比本程序新（{', '.join(unknown)}），请先升级程序 the backup's schema is newer "
                       f"than this code ({', '.join(unknown)}): upgrade Shequ GIS first", code="newer_schema")
    _recreate_database(url)
    _run([_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
          "--dbname", _libpq(url), str(path)], "恢复 restore")
    from gis_api.migrate import upgrade

    upgrade(url)
    return BackupInfo(path, path.stat().st_size, revisions)


def table_fingerprints(engine: Engine) -> dict[str, tuple[int, str]]:
    """Every base table of the ``public`` schema → (row count, md5 of its rows sorted as text)."""
    with engine.connect() as conn:
        tables = conn.execute(text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
            "AND table_type = 'BASE TABLE' ORDER BY table_name")).scalars().all()
        out = {}
        for table in tables:
            count, digest = conn.execute(text(
                f'SELECT count(*), md5(coalesce(string_agg(md5(t::text), \'\' ORDER BY md5(t::text)), \'\')) '
                f'FROM public."{table}" t')).one()
            out[table] = (int(count), str(digest))
    return out
