"""`shequ audit verify`: walk the audit chain; `shequ police-area import|list`: police-station areas."""

from __future__ import annotations

from pathlib import Path

import typer

audit_app = typer.Typer(help="审计日志 the append-only, hash-chained audit log.", no_args_is_help=True)
police_app = typer.Typer(help="派出所辖区 police-station areas (GeoJSON polygons).", no_args_is_help=True)


@audit_app.command("verify")
def verify() -> None:
    """校验审计链 check every entry's hash and link; exit 1 naming the first broken entry."""
    from sqlalchemy import text

    from gis_api.auth.audit import first_break
    from gis_api.commands.user import _engine

    with _engine().connect() as conn:
        found = first_break(conn)
        total = conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
    if found is not None:
        entry_id, reason = found
        typer.secho(f"审计链断裂 audit chain broken at entry {entry_id}: {reason}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    typer.echo(f"审计链完整 audit chain intact: {total} entries")


@police_app.command("import")
def import_(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="GeoJSON FeatureCollection（面）"),
    code_field: str = typer.Option("code", "--code-field", help="辖区代码属性 property holding the code"),
    name_field: str = typer.Option("name", "--name-field", help="辖区名称属性 property holding the name"),
    crs: str = typer.Option("wgs84", "--crs", help="坐标系 wgs84 / cgcs2000 / gcj02"),
) -> None:
    """导入派出所辖区（按代码新增或替换） import police-station areas, insert or replace by code."""
    import json

    from gis_api.auth import store
    from gis_api.commands.user import _audit, _engine

    try:
        collection = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        from geo.errors import InvalidInput

        raise InvalidInput(f"无法读取 GeoJSON cannot read GeoJSON: {exc}") from exc
    with _engine().begin() as conn:
        counts = store.import_police_areas(conn, collection, code_field, name_field, crs)
        codes = [str((f.get("properties") or {}).get(code_field)) for f in collection["features"]]
        _audit(conn, "police_area.import", codes[0] if len(codes) == 1 else f"police_area:{file.name}",
               after={"codes": codes, **counts})
    typer.echo(f"派出所辖区 police areas: 新增 created {counts['created']}, 替换 replaced {counts['updated']}")


@police_app.command("list")
def list_() -> None:
    """列出派出所辖区 list police-station areas."""
    from gis_api.auth import store
    from gis_api.commands.user import _engine

    with _engine().connect() as conn:
        for a in store.list_police_areas(conn):
            typer.echo(f"{a['code']}\t{a['name']}\t{a['source']}\tv{a['version']}\t{a['area_km2']} km²")


def register(app: typer.Typer) -> None:
    """Add ``shequ audit`` and ``shequ police-area``."""
    app.add_typer(audit_app, name="audit")
    app.add_typer(police_app, name="police-area")
