"""`shequ tiles stats|clear|seed` and `shequ tiles cache stats|prune`: the server-side vector tile cache."""

from __future__ import annotations

from typing import NoReturn

import typer

tiles_app = typer.Typer(
    help="矢量瓦片缓存 the server-side vector tile cache (stats, clear, pre-render).", no_args_is_help=True
)

cache_app = typer.Typer(
    help="瓦片缓存用量与清理 cache usage (per layer, last access) and LRU pruning.", no_args_is_help=True
)
tiles_app.add_typer(cache_app, name="cache")

DEMO_BBOX = "121.4802,31.2264,121.5208,31.2510"
MB = 1024 * 1024  # as SHEQU_TILE_CACHE_MAX_MB counts


def _fail(message: str) -> NoReturn:
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
            _fail("瓦片缓存表不存在或未升级：请先运行 shequ migrate")
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
            _fail("瓦片缓存表不存在或未升级：请先运行 shequ migrate")
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
    from gis_api.settings import get_settings
    from layers.ogc import parse_bbox_query, parse_crs
    from layers.registry import BASEMAP_ID
    from layers.store import available_layers
    from tiles.store import CacheKeeper, cache_available, get_tile, tileset_version
    from tiles.tms import tiles_for_bbox

    box = parse_bbox_query(bbox, parse_crs(None))  # a bad bbox is a QueryError: exit 1
    if box is None:
        _fail(f"bbox 需要 4 个逗号分隔的数字：{bbox!r}")
    engine = get_engine()
    with engine.connect() as conn:
        if not cache_available(conn):
            _fail("瓦片缓存表不存在或未升级：请先运行 shequ migrate")
        present = available_layers(conn)
    sets = []
    for name in [x.strip() for x in layers.split(",") if x.strip()]:
        if name == BASEMAP_ID:
            sets.append(
                (name, [lyr for lyr in present.values() if lyr.basemap and lyr.read_role == "public"])
            )
        elif name in present:
            sets.append((name, [present[name]]))
        else:
            _fail(f"未知图层 {name}；可用: basemap, {', '.join(sorted(present))}")
    work = [(name, lyrs, t) for name, lyrs in sets for z in _zooms(zooms) for t in tiles_for_bbox(box, z)]
    made = 0
    keeper = CacheKeeper.from_settings(engine, get_settings())  # seeding respects the size cap too
    for name, lyrs, t in tqdm(work, desc="渲染瓦片", unit="瓦片"):
        key = f"{name}@{tileset_version(lyrs)}"
        with engine.begin() as conn:
            result = get_tile(conn, key, lyrs, t)
        made += result.cache == "miss"
        if keeper.note(key, t, result):
            keeper.run()
    keeper.run(force=True)
    typer.echo(f"{len(work)} 个瓦片，新渲染 {made} 个")
    if keeper.evicted_tiles:
        typer.echo(
            f"超出缓存上限，已淘汰最久未用的 {keeper.evicted_tiles} 个瓦片（{keeper.evicted_bytes / MB:.2f} MB）"
        )


def _fmt_time(t) -> str:
    return t.astimezone().strftime("%Y-%m-%d %H:%M:%S") if t is not None else "-"


@cache_app.command("stats")
def cache_stats_cmd(as_json: bool = typer.Option(False, "--json", help="输出 JSON")) -> None:
    """缓存用量：瓦片数、字节数、每个图层、最早访问时间 tiles, bytes, per layer, oldest access."""
    import json

    from gis_api.db import get_engine
    from gis_api.settings import get_settings
    from tiles.store import cache_available, cache_usage

    with get_engine().connect() as conn:
        if not cache_available(conn):
            _fail("瓦片缓存表不存在或未升级：请先运行 shequ migrate")
        rows = cache_usage(conn)
    cap_mb = get_settings().tile_cache_max_mb
    tiles, size = sum(r.tiles for r in rows), sum(r.bytes for r in rows)
    oldest = min((r.oldest_access for r in rows), default=None)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "tiles": tiles,
                    "bytes": size,
                    "max_bytes": int(cap_mb * MB),
                    "oldest_access": oldest.isoformat() if oldest else None,
                    "tilesets": [
                        {
                            "tileset": r.tileset,
                            "layer": r.tileset.split("@", 1)[0],
                            "tiles": r.tiles,
                            "bytes": r.bytes,
                            "oldest_access": r.oldest_access.isoformat(),
                            "newest_access": r.newest_access.isoformat(),
                        }
                        for r in rows
                    ],
                },
                ensure_ascii=False,
                indent=1,
            )
        )
        return
    cap = f"{cap_mb:.2f} MB（{100 * size / (cap_mb * MB):.1f} %）" if cap_mb else "不限 unlimited"
    typer.echo(
        f"合计 {tiles} 个瓦片，{size} 字节（{size / MB:.2f} MB），上限 {cap}，最早访问 {_fmt_time(oldest)}"
    )
    if rows:
        typer.echo(f"{'瓦片集 tileset':40s} {'瓦片':>7s} {'字节':>12s} {'最早访问':>19s}  {'最近访问':>19s}")
    for r in rows:
        typer.echo(
            f"{r.tileset:40s} {r.tiles:7d} {r.bytes:12d} {_fmt_time(r.oldest_access):>19s}  "
            f"{_fmt_time(r.newest_access):>19s}"
        )


@cache_app.command("prune")
def cache_prune(
    max_mb: float = typer.Option(
        None, "--max-mb", help="淘汰最久未用的瓦片直到不超过此大小（MB）；默认用 SHEQU_TILE_CACHE_MAX_MB"
    ),
    older_than: float = typer.Option(None, "--older-than", help="删除超过此天数未被访问的瓦片"),
) -> None:
    """清理瓦片缓存：按最近访问时间淘汰 (LRU) 或删除久未访问的瓦片 evict least recently used tiles."""
    from gis_api.db import get_engine
    from gis_api.settings import get_settings
    from tiles.store import cache_available, cache_total, evict_lru, prune_older_than

    if max_mb is not None and max_mb < 0:
        _fail(f"--max-mb 不能为负数：{max_mb}")
    if older_than is not None and older_than < 0:
        _fail(f"--older-than 不能为负数：{older_than}")
    if max_mb is None and older_than is None:
        max_mb = get_settings().tile_cache_max_mb
        if not max_mb:
            _fail("未设缓存上限（SHEQU_TILE_CACHE_MAX_MB=0）：请给出 --max-mb 或 --older-than")
    with get_engine().begin() as conn:
        if not cache_available(conn):
            _fail("瓦片缓存表不存在或未升级：请先运行 shequ migrate")
        n0, size0 = cache_total(conn)
        typer.echo(f"清理前 {n0} 个瓦片，{size0 / MB:.2f} MB")
        gone_n = gone_b = 0
        if older_than is not None:
            n, b = prune_older_than(conn, older_than)
            typer.echo(f"超过 {older_than:g} 天未访问：删除 {n} 个瓦片（{b / MB:.2f} MB）")
            gone_n, gone_b = gone_n + n, gone_b + b
        if max_mb is not None:
            n, b = evict_lru(conn, int(max_mb * MB))
            typer.echo(f"上限 {max_mb:g} MB：淘汰最久未用的 {n} 个瓦片（{b / MB:.2f} MB）")
            gone_n, gone_b = gone_n + n, gone_b + b
        n1, size1 = cache_total(conn)
    typer.echo(f"已清除 {gone_n} 个瓦片（{gone_b / MB:.2f} MB），剩余 {n1} 个瓦片（{size1 / MB:.2f} MB）")


def register(app: typer.Typer) -> None:
    """Add ``tiles`` (stats, clear, seed, cache stats|prune) to the ``shequ`` command line."""
    app.add_typer(tiles_app, name="tiles")
