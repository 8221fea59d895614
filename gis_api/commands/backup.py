"""`shequ db backup -o FILE` and `shequ db restore FILE` (issue 15): whole-database backups (gis_api.backup)."""

from __future__ import annotations

from pathlib import Path

import typer

from gis_api.commands.core import db_app


@db_app.command("backup")
def db_backup(
    output: Path = typer.Option(..., "-o", "--output", help="备份文件 the backup file to write (pg_dump custom format)"),
    database_url: str | None = typer.Option(None, "--database-url", help="default: the database every command uses"),
) -> None:
    """备份整个数据库 dump the whole database (pg_dump custom format; the schema version is inside)."""
    from gis_api.backup import backup
    from gis_api.db import database_url as configured

    info = backup(database_url or configured(), output)
    typer.echo(f"backup written: {info.path} ({info.size_bytes / 1e6:.1f} MB), schema {', '.join(info.revisions)}")


@db_app.command("restore")
def db_restore(
    backup_file: Path = typer.Argument(..., help="shequ db backup 写出的文件 a file written by shequ db backup"),
    database_url: str | None = typer.Option(None, "--database-url", help="default: the database every command uses"),
    yes: bool = typer.Option(False, "--yes", help="不再确认 do not ask: the database is replaced"),
) -> None:
    """恢复备份（替换整个数据库） replace the database by a backup; a newer schema is refused, an older one migrated."""
    from gis_api.backup import restore
    from gis_api.db import database_url as configured

    url = database_url or configured()
    if not yes:
        typer.confirm("恢复会替换整个数据库 the restore replaces the whole database. Continue?", abort=True)
    info = restore(url, backup_file)
    typer.echo(f"restored {info.path} (schema {', '.join(info.revisions)}) and migrated to head")


def register(app: typer.Typer) -> None:
    """The commands live on ``shequ db`` (added by gis_api.commands.core)."""
