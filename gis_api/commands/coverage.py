"""`shequ coverage --type 幼儿园 --distance walk -o report/`: service-radius coverage map + CSV report."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def coverage(
    facility_type: str = typer.Option(..., "--type", help="设施类型，例如 幼儿园 / 小学 / 菜市场（shequ siting types）"),
    distance: str = typer.Option(None, "--distance", help="walk (road network) | line (straight); default: the type's"),
    radius: float = typer.Option(None, "--radius", help="override the GB 50180-2018 radius, metres"),
    community: str = typer.Option(None, "--community", help="restrict to one admin unit (code)"),
    out: Path = typer.Option(Path("report"), "-o", "--out", help="output folder"),
) -> None:
    """服务半径覆盖分析 households covered by a facility type: offline map, PDF, GeoPackage, CSV per building,
    facility and area."""
    from rich.console import Console

    from gis_api.db import get_engine
    from siting import report, service, store

    with Console(stderr=True).status(f"计算 {facility_type} 覆盖 computing coverage…"), \
            get_engine().begin() as conn:
        res = service.coverage_analysis(conn, facility_type, distance=distance, radius_m=radius,
                                        community_code=community)
        store.save_result(conn, "coverage", {"type": facility_type, "distance": distance, "radius": radius,
                                             "community": community}, res["summary"])
        store.replace_coverage_gap(conn, res["summary"], res["layers"]["uncovered_area"])  # the map-page layer
    s = res["summary"]
    if s.get("note"):
        typer.secho(s["note"], fg=typer.colors.YELLOW, err=True)
    code = s["type_code"]
    html = report.coverage_map(res, out / f"coverage_{code}.html")
    report.write_csv(out / f"coverage_{code}_buildings.csv", res["layers"]["buildings"]["features"],
                     ["id", "name", "households", "covered", "distance_m", "facility_id"])
    report.write_csv(out / f"coverage_{code}_facilities.csv", res["layers"]["facilities"]["features"],
                     ["id", "name", "kind", "catchment_households"])
    areas = out / f"coverage_{code}_areas.csv"
    report.write_csv(areas, [{"geometry": None, "properties": a} for a in s["by_area"]],
                     ["code", "name", "level", "households", "covered_households", "covered_share"], lonlat=False)
    if s.get("by_grid"):
        report.write_csv(out / f"coverage_{code}_grids.csv", [{"geometry": None, "properties": g} for g in s["by_grid"]],
                         ["code", "name", "households", "covered_households", "covered_share"], lonlat=False)
    report.write_summary(out / f"coverage_{code}_summary.json", s)
    from siting import documents

    (out / f"coverage_{code}.pdf").write_bytes(documents.coverage_pdf(res))
    (out / f"coverage_{code}.gpkg").write_bytes(documents.gpkg_bytes(res["layers"]))
    typer.echo(json.dumps({k: s[k] for k in ("facility_type", "radius_m", "distance", "facilities", "households",
                                             "covered_households", "covered_share")}, ensure_ascii=False))
    typer.echo(f"saved {html}, PDF, GeoPackage and CSVs in {out}")


def register(app: typer.Typer) -> None:
    """Add `shequ coverage` to the CLI."""
    app.command("coverage")(coverage)
