"""`shequ tiles stats|clear|seed`: the server-side vector tile cache."""

from __future__ import annotations

import typer

tiles_app = typer.Typer(help="矢量瓦片缓存 the server-side vector tile cache (stats, clear, pre-render).",
                        no_args_is_help=True)

DEMO_BBOX = "121.4802,31.2264,121.5208,31.2510"


def _fail(message: str) -> None:
    typer.secho(f"错误 error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def _zooms(text: str) -> list[int]:
    try:
        if "-" in text:
            a, b = (int(x) for x in text.split("-", 1))
            zs = list(range(a, b + 1))
        else:
            zs = [int(x) for x in text.split(",")]
    except ValueError:
        _fail(f"缩放级别格式应为 12-16 或 12,14：{text!r}")
    if not zs or min(zs) < 0 or max(zs) > 22:
        _fail(f"缩放级别应在 0…22：{text!r}")
    return zs


@tiles_app.command("stats")
def stats() -> None:
    """缓存中每个瓦片集的瓦片数与大小 tiles and bytes per cached tileset."""
    from gis_api.db import get_engine
    from tiles.store import cache_available, cache_stats

    with get_engine().connect() as conn:
        if not cache_available(conn):
            _fail("瓦片缓存表不存在：请先运行 shequ migrate")
        rows = cache_stats(conn)
    if not rows:
        typer.echo("缓存为空 the tile cache is empty")
    for tileset, n, size in rows:
        typer.echo(f"{tileset:40s} {n:7d} 个瓦片 {size / 1e6:8.2f} MB")


@tiles_app.command("clear")
def clear(layer: str = typer.Option(None, "--layer", help="只清除此图层（或 basemap）的缓存")) -> None:
    """清空瓦片缓存 drop cached tiles (they are re-rendered on the next request)."""
    from gis_api.db import get_engine
    from tiles.store import cache_available, clear_cache

    with get_engine().begin() as conn:
        if not cache_available(conn):
            _fail("瓦片缓存表不存在：请先运行 shequ migrate")
        n = clear_cache(conn, layer)
    typer.echo(f"已清除 {n} 个瓦片")


@tiles_app.command("seed")
def seed(
    layers: str = typer.Option("basemap", help="逗号分隔的图层 id（basemap = 多图层底图）"),
    zooms: str = typer.Option("12-16", help="缩放级别，如 12-16"),
    bbox: str = typer.Option(DEMO_BBOX, help="范围 minlon,minlat,maxlon,maxlat（默认演示区）"),
) -> None:
    """预先渲染瓦片进缓存 pre-render tiles of an area into the cache."""
    from tqdm import tqdm

    from gis_api.db import get_engine
    from layers.ogc import QueryError, bbox_to_lonlat, parse_bbox, parse_crs
    from layers.registry import BASEMAP_ID
    from layers.store import available_layers
    from tiles.store import cache_available, get_tile, tileset_version
    from tiles.tms import tiles_for_bbox

    try:
        box = bbox_to_lonlat(parse_bbox(bbox), parse_crs(None))
    except QueryError as exc:
        _fail(str(exc))
    engine = get_engine()
    with engine.connect() as conn:
        if not cache_available(conn):
            _fail("瓦片缓存表不存在：请先运行 shequ migrate")
        present = available_layers(conn)
    sets = []
    for name in [x.strip() for x in layers.split(",") if x.strip()]:
        if name == BASEMAP_ID:
            sets.append((name, [lyr for lyr in present.values() if lyr.basemap and lyr.read_role == "public"]))
        elif name in present:
            sets.append((name, [present[name]]))
        else:
            _fail(f"未知图层 {name}；可用: basemap, {', '.join(sorted(present))}")
    work = [(name, lyrs, t) for name, lyrs in sets for z in _zooms(zooms) for t in tiles_for_bbox(box, z)]
    made = 0
    for name, lyrs, t in tqdm(work, desc="渲染瓦片", unit="瓦片"):
        with engine.begin() as conn:
            made += get_tile(conn, f"{name}@{tileset_version(lyrs)}", lyrs, t).cache == "miss"
    typer.echo(f"{len(work)} 个瓦片，新渲染 {made} 个")


def register(app: typer.Typer) -> None:
    app.add_typer(tiles_app, name="tiles")
