"""`shequ map layers|export`: list the registered layers; write a standalone offline HTML map."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer

map_app = typer.Typer(help="地图 layers and standalone offline HTML map exports (folium).", no_args_is_help=True)


def _fail(message: str) -> NoReturn:
    typer.secho(f"错误 error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def _parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """The ``--bbox`` option as a WGS84 lon/lat box (a bad one is a QueryError: exit 1)."""
    from layers.ogc import parse_bbox_query, parse_crs

    return parse_bbox_query(text or None, parse_crs(None))


@map_app.command("layers")
def list_layers() -> None:
    """列出本库中可用的图层 list the layers present in this database."""
    from rich.console import Console
    from rich.table import Table

    from gis_api.db import get_engine
    from layers.store import available_layers

    with get_engine().connect() as conn:
        present = available_layers(conn)
    from layers import registry

    table = Table("id", "名称", "英文", "几何", "缩放", "权限", "状态")
    for layer in registry.all_layers():
        ok = layer.id in present
        table.add_row(layer.id, layer.title_zh, layer.title_en, layer.geometry_type,
                      f"{layer.min_zoom}–{layer.max_zoom}", layer.read_role, "可用" if ok else "表未创建")
    Console().print(table)


@map_app.command("export")
def export(
    layer_ids: list[str] = typer.Argument(None, help="图层 id（见 `shequ map layers`），可多个"),
    output: Path = typer.Option(..., "-o", "--output", help="输出 HTML 文件"),
    bbox: str = typer.Option(None, help="只导出此范围 minlon,minlat,maxlon,maxlat（WGS84）"),
    limit: int = typer.Option(20_000, min=1, max=200_000, help="每个图层最多要素数"),
    geojson: list[Path] = typer.Option(None, "--geojson", help="另加 GeoJSON 文件（如分析结果），可重复"),
    title: str = typer.Option("社区 GIS 地图", help="地图标题"),
) -> None:
    """导出可离线打开的单文件 HTML 地图 write a standalone HTML map that opens with no network."""
    import json

    from tqdm import tqdm

    from gis_api.db import get_engine
    from layers import folium_export as fx
    from layers.store import available_layers, fetch_features

    layer_ids = list(layer_ids or [])
    extra = list(geojson or [])
    if not layer_ids and not extra:
        _fail("请给出至少一个图层 id 或 --geojson 文件 (give layer ids or --geojson files)")
    box = _parse_bbox(bbox)
    parts: list[fx.MapLayer] = []
    with get_engine().connect() as conn:
        present = available_layers(conn)
        unknown = [i for i in layer_ids if i not in present]
        if unknown:
            _fail(f"未知或尚未创建的图层 unknown layer(s): {', '.join(unknown)}；可用: {', '.join(sorted(present))}")
        for layer_id in tqdm(layer_ids, desc="读取图层", unit="层"):
            layer = present[layer_id]
            fc = fetch_features(conn, layer, bbox=box, limit=limit)
            typer.echo(f"  {layer.id} {layer.title_zh}: {len(fc['features'])} 个要素")
            parts.append(fx.from_registry(layer, fc))
    for path in extra:
        try:
            fc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            _fail(f"无法读取 GeoJSON {path}: {exc}")
        if fc.get("type") == "Feature":
            fc = {"type": "FeatureCollection", "features": [fc]}
        if fc.get("type") != "FeatureCollection":
            _fail(f"{path} 不是 GeoJSON FeatureCollection")
        parts.append(fx.from_geojson(path.stem, fc))
        typer.echo(f"  {path.name}: {len(fc['features'])} 个要素")
    out = fx.export(parts, output, title=title)  # an ExportError is printed by the CLI (exit 1)
    typer.echo(f"已写出 {out} ({out.stat().st_size / 1e6:.1f} MB)，可离线打开")


def register(app: typer.Typer) -> None:
    """Add ``map`` (layers, export) to the ``shequ`` command line."""
    app.add_typer(map_app, name="map")
