"""`shequ address build|show|history`: the standard-address registry from the command line."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from geo.errors import NotFound

address_app = typer.Typer(help="标准地址库 the standard-address registry.", no_args_is_help=True)


def _fail(message: str) -> None:
    typer.secho(f"错误 error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def _bar_factory():
    from tqdm import tqdm

    bars = []

    def factory(desc: str, total: int | None):
        bar = tqdm(desc=desc, total=total, file=sys.stderr, leave=False, unit="")
        bars.append(bar)
        return bar.update

    return factory, bars


@address_app.command("build")
def build() -> None:
    """从道路、建筑和区划数据生成演示区标准地址库（可重复执行） build the registry from the demo data (idempotent)."""
    run_build()


def run_build(plan: Any = None, staged: dict[str, Any] | None = None) -> None:
    """Build the registry in one transaction, with progress bars, and print the counts: `plan_registry`, or
    ``plan`` (same arguments; `shequ province registry` gives the Dask one); with ``staged`` (workers,
    scheduler) the Dask workers write their districts' records (`service.build_registry_staged`)."""
    from address_registry import store
    from address_registry.service import build_registry, build_registry_staged
    from gis_api.db import get_engine

    factory, bars = _bar_factory()
    engine = get_engine()
    try:
        if staged is not None:
            with store.registry_staging(engine) as staging, engine.begin() as conn:
                stats = build_registry_staged(conn, staging, progress_factory=factory, **staged)
        else:
            with engine.begin() as conn:
                stats = build_registry(conn, progress_factory=factory, **({"plan": plan} if plan else {}))
    finally:
        for bar in bars:
            bar.close()
    labels = {
        "road": "道路 roads",
        "house_number_osm": "门牌（OSM） house numbers from OSM tags",
        "house_number_generated": "门牌（生成） generated house numbers",
        "building": "楼栋 buildings",
        "compound": "小区 compounds",
        "in_compound": "小区内地址 addresses inside compounds",
        "created": "新增 created",
        "updated": "新版本 new versions",
        "unchanged": "未变 unchanged",
        "aliases_created": "新增别名 aliases created",
    }
    for key, label in labels.items():
        typer.echo(f"{label:<40} {stats.get(key, 0):>6}")
    rest = {k: v for k, v in stats.items() if k not in labels}
    typer.echo("其它 other: " + json.dumps(rest, ensure_ascii=False))


@address_app.command("show")
def show(code: str = typer.Argument(..., help="标准地址编码 standard-address code")) -> None:
    """显示一个地址的当前版本 print an address (JSON)."""
    from address_registry import store
    from gis_api.db import get_engine

    with get_engine().connect() as conn:
        rec = store.current(conn, code)
        if rec is None:
            raise NotFound(f"标准地址不存在 no address {code}")
        out = store.record_to_json(rec) | {"aliases": store.aliases_of(conn, code)}
    typer.echo(json.dumps(out, ensure_ascii=False, indent=2))


@address_app.command("import")
def import_file(
    file: str = typer.Argument(..., help="CSV 或 GeoJSON 文件 (columns: docs/address-registry.md)"),
    crs: str = typer.Option("wgs84", "--crs", help="文件坐标系 wgs84 | cgcs2000 | gcj02"),
    dry_run: bool = typer.Option(False, "--dry-run", help="只校验不写入 validate only, write nothing"),
    changed_by: str = typer.Option("shequ address import", "--changed-by", help="修改人 who imports"),
    reason: str = typer.Option(None, "--reason", help="原因 why (default: 批量导入 + file name)"),
) -> None:
    """批量导入标准地址（一个事务：有任何错误行则全部不写入） bulk import, all or nothing."""
    from pathlib import Path

    from address_registry.importer import read_rows
    from address_registry.service import import_all_or_nothing
    from geo.crs import check_in_china, normalize_crs, to_wgs84
    from gis_api.db import get_engine

    path = Path(file)
    if not path.is_file():
        _fail(f"文件不存在 no such file: {file}")
    crs = normalize_crs(crs)
    rows = read_rows(path.read_bytes(), path.name)

    def convert(lon, lat):
        check_in_china(lon, lat)
        wlon, wlat = to_wgs84(lon, lat, crs)
        return float(wlon), float(wlat)

    factory, bars = _bar_factory()
    try:
        report = import_all_or_nothing(
            get_engine(),
            rows,
            changed_by,
            reason or f"批量导入 bulk import {path.name}",
            convert=convert,
            progress=factory("导入 importing", len(rows)),
            dry_run=dry_run,
        )
    finally:
        for bar in bars:
            bar.close()
    if report["errors"]:
        _error_table(report["errors"])
        bad_rows = len({e["row"] for e in report["errors"]})
        _fail(
            f"{bad_rows} 行有错误，未导入任何地址 {bad_rows} of {report['rows']} row(s) are invalid; nothing was "
            "imported"
        )
    if dry_run:
        typer.echo(f"校验通过 dry run: all {report['rows']} row(s) valid; nothing written")
        return
    typer.echo(f"已导入 imported {len(report['created'])} address(es) from {path.name} (crs {crs})")


def _error_table(errors: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="导入错误 import errors", show_lines=False)
    table.add_column("行 row", justify="right")
    table.add_column("字段 field")
    table.add_column("原因 reason", overflow="fold")
    for e in errors:
        table.add_row(str(e["row"]), e["field"], e["reason"])
    Console(stderr=True, width=160).print(table)


def register(app: typer.Typer) -> None:
    """Add `shequ address …` to the CLI."""
    app.add_typer(address_app, name="address")
