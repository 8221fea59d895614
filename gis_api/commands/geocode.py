"""`shequ geocode in.csv --column 地址 -o out.csv`: batch geocoding of a CSV file."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

OUT_COLUMNS = ("address_code", "formatted", "level", "score", "lon", "lat")


def geocode_csv(
    input_csv: Path = typer.Argument(..., exists=True, dir_okay=False, help="输入 CSV（UTF-8，可带 BOM）"),
    column: str = typer.Option("地址", "--column", "-c", help="地址所在列名 the column holding the address text"),
    output: Path = typer.Option(..., "--output", "-o", help="输出 CSV：原列 + 编码、标准地址、层级、得分、坐标"),
    crs: str = typer.Option("wgs84", help="输出坐标系 wgs84 | cgcs2000 | gcj02"),
    dask: bool = typer.Option(False, "--dask", help="在 Dask 上分区批量编码 geocode in partitions on Dask (a local cluster)"),
    scheduler: str | None = typer.Option(None, "--scheduler", help="Dask 调度器 use this scheduler (tcp://host:8786)"),
    workers: int = typer.Option(2, "--workers", help="本地集群的工作进程数 worker processes of the local cluster"),
    partition_size: int = typer.Option(5000, "--partition-size", help="每个分区的行数 rows per partition"),
) -> None:
    """地理编码 CSV 中的地址列 geocode one column of a CSV file, keeping every input row and column."""
    import csv

    from tqdm import tqdm

    from address_registry.service import geocoder_for
    from geo.crs import from_wgs84, normalize_crs
    from gis_api.db import get_engine

    crs = normalize_crs(crs)
    if scheduler:
        from address_registry.bulk import check_scheduler

        check_scheduler(scheduler)  # Unavailable naming it: before the registry is loaded
    with open(input_csv, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    if column not in fields:
        typer.secho(f"错误 error: 列 {column!r} 不存在 column not found; columns: {', '.join(fields)}",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    geocoder = geocoder_for(get_engine())
    if len(geocoder) == 0:
        typer.secho("错误 error: 标准地址库为空 the registry is empty: run `shequ address build`", fg=typer.colors.RED,
                    err=True)
        raise typer.Exit(1)
    out_fields = fields + [c for c in OUT_COLUMNS if c not in fields]
    matched = 0
    texts = [row.get(column) or "" for row in rows]
    if dask or scheduler:
        from address_registry.bulk import geocode_bulk

        answers = geocode_bulk(geocoder, texts, scheduler=scheduler, workers=workers,
                               partition_size=partition_size)  # Unavailable: names the scheduler, exit 1
    else:
        answers = [geocoder.geocode(t, limit=1) for t in tqdm(texts, desc="地理编码 geocoding", unit="条", file=sys.stderr)]
    with open(output, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=out_fields)
        writer.writeheader()
        for row, res in zip(rows, answers, strict=True):
            if res:
                best = res[0]
                lon, lat = best["lon"], best["lat"]
                if lon is not None:
                    lon, lat = from_wgs84(lon, lat, crs)
                row.update({"address_code": best["address_code"], "formatted": best["formatted"],
                            "level": best["level"], "score": best["score"],
                            "lon": None if lon is None else round(float(lon), 7),
                            "lat": None if lat is None else round(float(lat), 7)})
                matched += 1
            else:
                row.update({c: "" for c in OUT_COLUMNS})
            writer.writerow(row)
    typer.echo(f"{matched}/{len(rows)} 条匹配 rows matched → {output}")


def register(app: typer.Typer) -> None:
    """Add `shequ geocode` to the CLI."""
    app.command("geocode")(geocode_csv)
