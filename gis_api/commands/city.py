"""`shequ city import|list|remove`: onboard a city from its own base data (docs/onboarding.md)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer

city_app = typer.Typer(
    help="城市 onboard a city from its own base data (OSM, Shapefile/GeoPackage, POIs, addresses).",
    no_args_is_help=True,
)


def _progress(desc: str, total: int):
    from tqdm import tqdm

    return lambda it: tqdm(it, desc=desc, total=total, file=sys.stderr, leave=False, unit="批")


def _import_addresses(path: Path, crs: str | None, dry_run: bool) -> int:
    """The address list through the bulk standard-address import (all or nothing); returns rows created.

    Row errors raise `OnboardingError` naming the first few (nothing is written)."""
    from address_registry.importer import import_all_or_nothing, read_rows
    from geo.crs import check_in_china, normalize_crs, to_wgs84
    from gis_api.db import get_engine
    from onboarding.errors import OnboardingError, UnreadableFile

    if not path.is_file():
        raise UnreadableFile(f"文件不存在 no such file: {path}")
    name = normalize_crs(crs or "wgs84")
    rows = read_rows(path.read_bytes(), path.name)

    def convert(lon, lat):
        check_in_china(lon, lat)
        wlon, wlat = to_wgs84(lon, lat, name)
        return float(wlon), float(wlat)

    report = import_all_or_nothing(
        get_engine(),
        rows,
        "shequ city import",
        f"城市导入 city import {path.name}",
        convert=convert,
        dry_run=dry_run,
    )
    if report["errors"]:
        first = "; ".join(f"row {e['row']} {e['field']}: {e['reason']}" for e in report["errors"][:3])
        raise OnboardingError(
            f"地址文件有错误 {path.name}: {len(report['errors'])} error(s), nothing imported ({first})",
            detail=report["errors"],
            code="address_rows_invalid",
        )
    return report["rows"] if dry_run else len(report["created"])


def _import_boundaries(path: Path, crs: str | None, dry_run: bool) -> str:
    """The city's own township / community boundaries through `shequ grid import` (one transaction)."""
    from gis_api.db import get_engine
    from grid_builder.importer import import_boundaries, read_boundaries
    from onboarding.errors import UnreadableFile

    if not path.exists():
        raise UnreadableFile(f"文件不存在 no such file: {path}")
    records, problems = read_boundaries(path, crs=crs or "wgs84")
    for p in problems:
        typer.secho(f"  注意 note: {p}", fg=typer.colors.YELLOW)
    res = import_boundaries(
        get_engine(), records, dry_run=dry_run, by="shequ city import", source_name=path.name
    )
    return f"{res['townships']} 街道 townships, {res['communities']} 社区 communities, {len(res['retired'])} 临时单元撤销 retired"


def _steps(report: dict, bbox, zooms: str, own_boundaries: bool = False) -> list[list[str]]:
    """The usual analysis steps on the new city (inside China), or those that do not need GB/T 2260 (outside)."""
    seed = [
        "tiles",
        "seed",
        "--layers",
        "basemap",
        "--zooms",
        zooms,
        "--bbox",
        ",".join(f"{v:.6f}" for v in bbox),
    ]
    if report["outside_china"]:
        return [seed]
    code = report["area"].split()[0]
    district = ["--district", code] if len(code) == 6 and not code.endswith("00") else []
    out = f"var/city-output/{report['city_id']}"
    return [
        *([] if own_boundaries else [["grid", "boundaries", *district]]),
        ["address", "build"],
        ["grid", "build", "--all"],
        ["coverage", "--type", "幼儿园", "--distance", "walk", "-o", f"{out}/coverage"],
        seed,
    ]


def _run_steps(steps: list[list[str]]) -> list[tuple[str, str]]:
    """Run CLI steps one after the other; a failing step is reported, the next ones still run."""
    from geo.errors import ShequError
    from gis_api.cli import app
    from gis_api.errors import cli_message

    out = []
    for args in steps:
        label = "shequ " + " ".join(args)
        typer.secho(f"==> {label}", fg=typer.colors.CYAN)
        t0 = time.perf_counter()
        try:
            app(args, standalone_mode=False)
            result = "ok"
        except ShequError as exc:
            result = cli_message(exc)
        except (typer.Exit, SystemExit) as exc:
            code = getattr(exc, "exit_code", getattr(exc, "code", 1))
            result = "ok" if not code else f"exit {code}"
        out.append((label, f"{result} ({time.perf_counter() - t0:.1f} s)"))
    return out


@city_app.command("import")
def import_(
    name: str = typer.Option(..., "--name", help="城市/区县名称（唯一） the city's name"),
    district_code: str = typer.Option(
        None, "--district-code", help="GB/T 2260 区划代码，如 310101 或 310100"
    ),
    osm: Path = typer.Option(None, "--osm", help="OSM 文件 .osm.pbf / .osm"),
    osm_layers: str = typer.Option(
        None,
        "--osm-layers",
        help="只取 OSM 中的这些图层，逗号分隔 (road,building,poi,water,railway,address_point)",
    ),
    layer: list[str] = typer.Option(
        None,
        "--layer",
        help="kind=FILE 或 kind:CRS=FILE（road, building, poi, water, railway, address），可重复",
    ),
    mapping: Path = typer.Option(None, "--mapping", help="字段映射 YAML field mapping"),
    crs: str = typer.Option(
        None,
        "--crs",
        help="无坐标系文件的坐标系 CRS of files without one (EPSG:4490, EPSG:4528, gcj02, bd09)",
    ),
    encoding: str = typer.Option(
        None, "--encoding", help="属性编码 attribute encoding (utf-8, gb18030; default: .cpg or detected)"
    ),
    outside_china: bool = typer.Option(
        False, "--outside-china", help="境外城市：不要求区划代码，关闭仅适用于中国的检查"
    ),
    steps: bool = typer.Option(
        True, "--steps/--no-steps", help="导入后运行常规步骤 (boundaries, registry, grids, H3, tiles)"
    ),
    zooms: str = typer.Option("13-15", "--zooms", help="导入后预渲染瓦片的缩放级别"),
    boundaries: Path = typer.Option(
        None,
        "--boundaries",
        help="城市自有街道/社区边界 (shequ grid import 格式: code, name; GeoJSON/GPKG/SHP)",
    ),
) -> None:
    """导入一个城市的基础数据（每图层一个事务，可重复执行） import a city's base data, then run the usual steps."""
    from gis_api.db import get_engine
    from onboarding.errors import OnboardingError
    from onboarding.service import ImportSpec, import_city, parse_layer_arg

    if outside_china and district_code:
        raise OnboardingError(
            "--outside-china 与 --district-code 不能同时使用 (give one of them)", code="bad_mode"
        )
    sources = [parse_layer_arg(a) for a in layer or []]
    addresses = [s for s in sources if s.kind == "address"]
    if addresses and outside_china:
        raise OnboardingError(
            "境外模式不导入中文标准地址 address lists are Chinese standard addresses: not outside China",
            code="bad_mode",
        )
    wanted = tuple(x.strip() for x in osm_layers.split(",")) if osm_layers else None
    spec = ImportSpec(name, district_code, outside_china, osm, wanted, sources, mapping, crs, encoding)
    for src in addresses:  # checked before anything is written
        _import_addresses(src.path, src.crs, dry_run=True)
    if boundaries is not None:
        _import_boundaries(boundaries, crs, dry_run=True)
    from tqdm import tqdm

    with tqdm(desc="读取 OSM reading", unit="对象", file=sys.stderr, leave=False, disable=osm is None) as bar:
        report = import_city(get_engine(), spec, _progress, bar.update)
    typer.echo(f"城市 city {report['name']} (id {report['city_id']}), 范围 area: {report['area']}")
    for rep in report["layers"]:
        extra = f"; {'; '.join(rep.notes)}" if rep.notes else ""
        typer.echo(
            f"  {rep.layer:<13} {rep.source}: 读入 read {rep.read}, 写入 written {rep.written}, 修复 repaired "
            f"{rep.repaired}, 空几何 empty {rep.dropped_empty}, 区外拒绝 outside {rep.outside_area}{extra}"
        )
    for s in report["skipped_checks"]:
        typer.secho(f"  境外模式跳过 skipped (outside China): {s}", fg=typer.colors.YELLOW)
    for src in addresses:
        n = _import_addresses(src.path, src.crs, dry_run=False)
        typer.echo(f"  地址 addresses {src.path.name}: 导入 imported {n} standard addresses")
    if boundaries is not None:
        typer.echo(
            f"  边界 boundaries {boundaries.name}: {_import_boundaries(boundaries, crs, dry_run=False)}"
        )
    if steps:
        from sqlalchemy import text

        with get_engine().connect() as conn:
            row = conn.execute(
                text(
                    "SELECT ST_XMin(extent), ST_YMin(extent), ST_XMax(extent), ST_YMax(extent) FROM city WHERE id = :i"
                ),
                {"i": report["city_id"]},
            ).one()
        for label, result in _run_steps(_steps(report, tuple(row), zooms, boundaries is not None)):
            typer.echo(f"  步骤 step {label}: {result}")


@city_app.command("list")
def list_() -> None:
    """列出已导入的城市 list imported cities with their counts."""
    from gis_api.db import get_engine
    from onboarding.store import list_cities

    with get_engine().connect() as conn:
        cities = list_cities(conn)
    if not cities:
        typer.echo("尚未导入城市 no city imported yet (shequ city import)")
    for c in cities:
        mode = "境外 outside China" if c["outside_china"] else c["district_code"]
        counts = ", ".join(f"{k} {v}" for k, v in (c["counts"] or {}).items() if v)
        bbox = ",".join(f"{v:.4f}" for v in c["bbox"]) if c["bbox"] else "-"
        typer.echo(f"{c['name']} [{mode}] {counts}  bbox {bbox}  ({c['imported_at']:%Y-%m-%d %H:%M})")


@city_app.command("remove")
def remove(name: str = typer.Argument(..., help="城市名称")) -> None:
    """删除一个已导入的城市及其全部图层数据（一个事务） remove a city and all of its rows."""
    from gis_api.db import get_engine
    from onboarding.store import remove_city

    removed = remove_city(get_engine(), name)
    typer.echo(f"已删除 removed {name}: " + ", ".join(f"{k} {v}" for k, v in removed.items()))


def register(app: typer.Typer) -> None:
    """Add ``shequ city …`` to the CLI."""
    app.add_typer(city_app, name="city")
