"""`shequ export LAYER -f gpkg|shp|geojson|kml|csv|xlsx [-o FILE] [--bbox] [--filter] [--where name=value]`."""

from __future__ import annotations

from pathlib import Path

import typer


def export_cmd(
    layer_id: str = typer.Argument(..., help="图层 id（如 building、road、standard_address）"),
    fmt: str = typer.Option("gpkg", "--format", "-f", help="gpkg | shp | geojson | kml | csv | xlsx"),
    output: Path | None = typer.Option(None, "--output", "-o", help="输出文件（默认 <图层>.<扩展名>）"),
    bbox: str | None = typer.Option(None, help="范围 minlon,minlat,maxlon,maxlat（WGS84）"),
    cql: str | None = typer.Option(None, "--filter", help="CQL2 文本过滤，如 \"kind = 'school'\""),
    filter_lang: str | None = typer.Option(None, "--filter-lang", help="cql2-text（默认）或 cql2-json"),
    datetime: str | None = typer.Option(None, help="时刻或区间（有有效期的图层）"),
    where: list[str] = typer.Option([], "--where", help="属性等值过滤 name=value，可重复"),
) -> None:
    """导出一个图层为文件（本机运维命令：可导出全部图层）export one layer to a file.

    Same query as the API's ``/collections/{id}/export``; run on the server by an operator, so internal
    layers export too (the API checks the caller's role).
    """
    from gis_api.db import get_engine
    from layers import export
    from layers.ogc import QueryError
    from layers.store import available_layers

    params: list[tuple[str, str]] = [("format", fmt)]
    for key, value in (("bbox", bbox), ("filter", cql), ("filter-lang", filter_lang), ("datetime", datetime)):
        if value is not None:
            params.append((key, value))
    for item in where:
        name, sep, value = item.partition("=")
        if not sep:
            raise QueryError(f"--where 应为 name=value：{item!r}", "where")
        params.append((name.strip(), value))
    with get_engine().connect() as conn:
        layers = available_layers(conn)
        layer = layers.get(layer_id)
        if layer is None:
            raise QueryError(f"未知图层 {layer_id}；可用：{', '.join(sorted(layers))}", "layer")
        parsed_fmt, q = export.parse_export_query(layer, params)
        features = export.fetch_export_features(conn, layer, q)
    out = export.write_export(layer, features, parsed_fmt)
    path = output or Path(out.filename)
    path.write_bytes(out.data)
    typer.echo(f"已导出 {out.count} 个要素到 {path}（{len(out.data) / 1024:.1f} KB）")


def register(app: typer.Typer) -> None:
    """Add ``export`` to the ``shequ`` command line."""
    app.command("export")(export_cmd)
