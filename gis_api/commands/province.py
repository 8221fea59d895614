"""`shequ province h3|coverage|registry`: province batch jobs on Dask, one partition per district (issue 14 §3)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

province_app = typer.Typer(
    help="全省批处理 province batch jobs on Dask, partitioned by district (a local cluster by default).",
    no_args_is_help=True,
)

_AREA = typer.Option(None, "--area", help="分区代码，可重复（缺省：所有含建筑的区县）area codes, repeatable")
_WORKERS = typer.Option(2, "--workers", help="本地集群的工作进程数；0 = 本进程顺序计算 (no Dask)")
_SCHEDULER = typer.Option(None, "--scheduler", help="Dask 调度器 use this scheduler (tcp://host:8786)")
_READER = typer.Option("driver", "--reader",
                       help="谁读取分区 who reads each partition from PostGIS: driver (this process) | worker "
                            "(each worker, with DATABASE_URL of its own environment)")


def _engine():
    from gis_api.db import get_engine

    return get_engine()


def check_cluster(scheduler: str | None, reader: str) -> None:
    """Before a Dask job reads anything: with workers reading the database and a LocalCluster, this process's
    ``DATABASE_URL`` (which they inherit) set to the embedded cluster's when unset; a scheduler that cannot be
    reached is named (`Unavailable`)."""
    if reader == "worker" and not scheduler:
        import os

        from gis_api.db import database_url
        from gis_api.settings import get_settings

        # the LocalCluster's workers inherit this environment: they reach the same database
        os.environ.setdefault("DATABASE_URL", database_url(get_settings()))
    if scheduler:
        from geo.cluster import check_scheduler

        check_scheduler(scheduler)  # Unavailable naming it, before anything is read


@province_app.command("h3")
def h3_cmd(
    res: int = typer.Option(9, "--res", help="分辨率 7–12"),
    mode: str = typer.Option("center", "--mode", help="center | overlap | full"),
    level: str = typer.Option("district", "--level", help="分区级别 district | township | community"),
    area: list[str] = _AREA,
    save: bool = typer.Option(False, "--save/--no-save", help="写入 h3_cell 表（地图图层）"),
    out: Path = typer.Option(None, "--out", help="另存 GeoJSON 文件"),
    reader: str = _READER,
    workers: int = _WORKERS,
    scheduler: str | None = _SCHEDULER,
) -> None:
    """各区 H3 单元统计 H3 cells with counts for every district, one Dask task per district."""
    from geo.geojson import feature, feature_collection
    from grid_builder.province import h3_province

    check_cluster(scheduler, reader)
    got = h3_province(_engine(), res, mode, level=level, codes=area or None, save=save, reader=reader, workers=workers,
                      scheduler=scheduler)
    for code, cells in got.items():
        typer.echo(f"{code} res {res} {mode}: {len(cells)} 个单元, {round(sum(c['households'] for c in cells))} 户, "
                   f"{sum(c['buildings'] for c in cells)} 栋建筑, {sum(c.get('addresses') or 0 for c in cells)} 个地址")
    typer.echo(f"{len(got)} 个分区, {sum(len(c) for c in got.values())} 个单元" + (", 已写入 h3_cell" if save else ""))
    if out:
        fc = feature_collection(feature(c["geom"], {"area_code": code, **{k: v for k, v in c.items() if k != "geom"}})
                                for code, cells in got.items() for c in cells)
        out.write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")
        typer.echo(f"GeoJSON: {out}")


@province_app.command("coverage")
def coverage_cmd(
    facility_type: str = typer.Option(..., "--type", help="设施类型，例如 幼儿园 / 公交车站（shequ siting types）"),
    distance: str = typer.Option(None, "--distance", help="walk | line; default: the type's"),
    radius: float = typer.Option(None, "--radius", help="override the GB 50180-2018 radius, metres"),
    area: list[str] = _AREA,
    out: Path = typer.Option(None, "--out", help="另存每区汇总 CSV per district"),
    reader: str = _READER,
    workers: int = _WORKERS,
    scheduler: str | None = _SCHEDULER,
) -> None:
    """全省服务半径覆盖 households covered by a facility type in every district, one Dask task per district."""
    from siting.province import coverage_province

    check_cluster(scheduler, reader)
    res = coverage_province(_engine(), facility_type, distance=distance, radius_m=radius, codes=area or None,
                            reader=reader, workers=workers, scheduler=scheduler)
    s = res["summary"]
    for a in s["by_area"]:
        typer.echo(f"{a['code']} {a['name']}: {a['covered_households']}/{a['households']} 户 ({a['covered_share']:.1%})")
    typer.echo(json.dumps({k: v for k, v in s.items() if k != "by_area"}, ensure_ascii=False))
    if out:
        import csv

        with open(out, "w", newline="", encoding="utf-8-sig") as fh:
            w = csv.DictWriter(fh, ["code", "name", "households", "covered_households", "covered_share"])
            w.writeheader()
            w.writerows(s["by_area"])
        typer.echo(f"CSV: {out}")


WRITERS = ("worker", "driver")


@province_app.command("registry")
def registry_cmd(
    workers: int = _WORKERS,
    scheduler: str | None = _SCHEDULER,
    writer: str = typer.Option(
        "worker", "--writer",
        help="谁写入地址 who writes the records: worker (each Dask worker COPYs its districts' records into a "
             "staging table with DATABASE_URL of its own environment; this process commits them in one "
             "transaction) | driver (the records travel back to this process, which writes them)"),
) -> None:
    """全省标准地址库生成 build the registry with each district's houses, buildings and rooms planned in a Dask
    task: the same registry as `shequ address build` (roads, number placing and compounds on this process)."""
    from functools import partial

    from address_registry.province import plan_registry_on_dask
    from geo.errors import InvalidInput
    from gis_api.commands.address import run_build

    if writer not in WRITERS:
        raise InvalidInput(f"写入方式须为 {'/'.join(WRITERS)} (writer must be one of {WRITERS}), got {writer!r}")
    check_cluster(scheduler, "worker" if writer == "worker" else "driver")
    if writer == "worker":
        run_build(staged={"workers": workers, "scheduler": scheduler})
    else:
        run_build(partial(plan_registry_on_dask, workers=workers, scheduler=scheduler))


def register(app: typer.Typer) -> None:
    """Add `shequ province` to the CLI."""
    app.add_typer(province_app, name="province")
