"""`shequ siting solve|plan|cameras|types`: facility location and camera siting.

Domain errors (bad options, unreadable CSVs, infeasible models, unknown areas) are raised as `geo.errors`
classes; `gis_api.cli.ShequGroup` prints them and exits with status 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

siting_app = typer.Typer(help="设施选址与摄像机布设 facility location (LSCP / MCLP / p-median) and camera siting.",
                         no_args_is_help=True)


@siting_app.command("solve")
def solve(
    model: str = typer.Option(..., "--model", help="lscp | mclp | pmedian"),
    demand: Path = typer.Option(..., "--demand", help="CSV id,x,y[,weight] in metres (projected)"),
    sites: Path = typer.Option(..., "--sites", help="CSV id,x,y[,capacity] in metres (projected)"),
    radius: float = typer.Option(..., "--radius", help="service radius / cut-off, metres"),
    p: int = typer.Option(None, "--p", help="sites to open in total, fixed ones included (mclp, pmedian)"),
    fixed: str = typer.Option(None, "--fixed", help="comma-separated site ids kept open (existing facilities)"),
    distance: str = typer.Option("line", "--distance", help="line (straight) | walk (DB road network, EPSG:32651 metres)"),
    max_snap: float = typer.Option(250.0, "--max-snap", help="walk: farthest a point may be from a road, metres"),
    method: str = typer.Option("auto", "--method", help="auto | exact (HiGHS MILP) | heuristic"),
    time_limit: float = typer.Option(600.0, "--time-limit", help="seconds"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object on stdout"),
) -> None:
    """求解选址模型 solve a location model on CSV points (metres)."""
    import numpy as np

    from geo.errors import BadRequest
    from siting.io import read_points
    from siting.models import MODELS

    model = model.lower()
    if model not in MODELS:
        raise BadRequest(f"--model 只能是 lscp、mclp 或 pmedian (got {model!r})")
    if not np.isfinite(radius) or radius <= 0:
        raise BadRequest(f"--radius 必须大于 0 (radius must be > 0, got {radius:g})")
    if method not in ("auto", "exact", "heuristic"):
        raise BadRequest("--method 只能是 auto、exact 或 heuristic")
    if model in ("mclp", "pmedian") and p is None:
        raise BadRequest(f"{model} 需要 --p (number of sites to open)")
    d = read_points(demand, "需求点 demand")
    s = read_points(sites, "候选点 sites")
    fixed_idx: list[int] = []
    if fixed:
        index = {str(i): k for k, i in enumerate(s.ids)}
        for token in (t.strip() for t in fixed.split(",") if t.strip()):
            if token not in index:
                raise BadRequest(f"--fixed 中的 id {token!r} 不在候选点中 (fixed id not among the sites)")
            fixed_idx.append(index[token])
    cov = _coverage(d, s, radius, distance, max_snap)
    kw = {"weights": d.weight, "fixed": fixed_idx, "capacity": s.capacity}
    m = MODELS[model](cov, **kw) if model == "lscp" else MODELS[model](cov, p, **kw)
    res = m.solve(method=method, time_limit=time_limit)
    out = res.as_dict(site_ids=s.ids)
    if as_json:
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        return
    typer.echo(f"模型 {model}  方法 {res.method} ({res.status})  用时 {res.seconds:.2f}s  gap {res.gap}")
    typer.echo(f"选中 {len(out['sites'])} 个点: {', '.join(map(str, out['sites']))}")
    typer.echo(f"目标值 {out['objective']}  覆盖权重 {out['covered_weight']} ({out['covered_share']:.1%})")


def _coverage(d, s, radius: float, distance: str, max_snap: float):
    """Demand × site pairs within ``radius``: straight line, or walking over the DB road network."""
    from geo.errors import BadRequest
    from siting.coverage import line_coverage

    if distance == "line":
        return line_coverage(d.xy, s.xy, radius)
    if distance != "walk":
        raise BadRequest("--distance 只能是 line 或 walk")
    from gis_api.db import get_engine
    from siting.errors import NetworkError, SitingDataMissing
    from siting.service import road_network

    try:
        with get_engine().connect() as conn:
            net = road_network(conn)
    except Exception as exc:  # no database / no roads: one message saying why
        reason = str(getattr(exc, "orig", exc)).splitlines()[0]
        raise SitingDataMissing(f"无法读取道路网络 (cannot load the road network): {reason}") from None
    # the network errors name the points by index; the message names them by their ids
    try:
        net.snap(s.xy, max_snap)
    except NetworkError as exc:
        bad = ", ".join(str(s.ids[i]) for i in exc.indices[:10])
        raise NetworkError(f"候选点不在道路网络上 (sites outside the network): {exc} — ids {bad}", exc.indices) from None
    try:
        return net.distances(d.xy, s.xy, radius, max_snap_m=max_snap)
    except NetworkError as exc:
        bad = ", ".join(str(d.ids[i]) for i in exc.indices[:10])
        raise NetworkError(f"需求点不在道路网络上 (demand outside the network): {exc} — ids {bad}", exc.indices) from None


@siting_app.command("plan")
def plan(
    facility_type: str = typer.Option(..., "--type", help="设施类型，例如 幼儿园 / 小学 / 社区服务站"),
    model: str = typer.Option("mclp", "--model", help="lscp | mclp | pmedian"),
    new_sites: int = typer.Option(3, "--new", help="new sites to add (mclp, pmedian)"),
    distance: str = typer.Option(None, "--distance", help="walk | line (default: the type's)"),
    radius: float = typer.Option(None, "--radius", help="override the standard radius, metres"),
    candidates: str = typer.Option("buildings", "--candidates", help="buildings,intersections"),
    community: str = typer.Option(None, "--community", help="admin code of the area (default: everything)"),
    out: Path = typer.Option(None, "-o", "--out", help="folder for sites.csv + summary.json"),
    save: bool = typer.Option(False, "--save", help="store the new sites as planned facilities of the type"),
) -> None:
    """在数据库数据上选址 choose the next sites of a facility type on the DB data (existing ones kept)."""
    from rich.console import Console

    from gis_api.db import get_engine
    from siting import report, service, store

    with Console(stderr=True).status(f"选址计算 solving {model} for {facility_type}…"), \
            get_engine().begin() as conn:
        res = service.siting_analysis(conn, facility_type, model=model, new_sites=new_sites, distance=distance,
                                      radius_m=radius, candidates=tuple(c.strip() for c in candidates.split(",")),
                                      community_code=community)
        if save:
            res["summary"]["saved_planned_facilities"] = service.save_planned_sites(conn, res)
        store.save_result(conn, "siting", {"type": facility_type, "model": model, "new": new_sites}, res["summary"])
    typer.echo(json.dumps(res["summary"], ensure_ascii=False, indent=2))
    if out:
        report.write_csv(out / "sites.csv", res["layers"]["sites"]["features"])
        report.write_summary(out / "summary.json", res["summary"])
        typer.echo(f"saved {out}/sites.csv, summary.json")


@siting_app.command("cameras")
def cameras(
    community: str = typer.Option(None, "--community", help="community code (default: the first community; "
                                  "without communities a window of the district, said so)"),
    camera_model: str = typer.Option("bullet-6mm", "--model", help="bullet-4mm | bullet-6mm | bullet-12mm | dome-360"),
    headings: int = typer.Option(8, "--headings", help="headings per candidate position"),
    spacing: float = typer.Option(30.0, "--spacing", help="candidate pole spacing along roads, metres"),
    k: int = typer.Option(None, "--k", help="best k new cameras (MCLP); default: fewest to see everything (LSCP)"),
    out: Path = typer.Option(Path("report"), "-o", "--out", help="output folder (folium HTML + CSV)"),
    save: bool = typer.Option(False, "--save", help="store the plan as planned cameras of the community"),
    corners: bool = typer.Option(False, "--corners", help="also building corners (wall mounts) as candidates"),
) -> None:
    """摄像机布设方案 camera plan for one community: positions, headings, blind spots, map + CSV."""
    from rich.console import Console

    from gis_api.db import get_engine
    from siting import report, service, store

    with Console(stderr=True).status("计算可视域与选址 computing visibility and the plan…"), \
            get_engine().begin() as conn:
        res = service.camera_plan(conn, community, model=camera_model, headings=headings,
                                  pole_spacing_m=spacing, k=k, building_corners=corners)
        s = res["summary"]
        store.save_result(conn, "cameras", {"community": community, "model": camera_model, "k": k}, s)
        if save:
            cams = [{"model": f["properties"]["model"], "heading_deg": f["properties"]["heading_deg"],
                     "range_m": f["properties"]["range_m"], "fov_deg": f["properties"]["fov_deg"],
                     "lon": f["properties"]["lon"], "lat": f["properties"]["lat"],
                     "name": f"planned #{f['properties']['camera']}"}
                    for f in res["layers"]["cameras"]["features"] if f["properties"]["status"] == "planned"]
            store.replace_planned_cameras(conn, s["area_code"] if s["area_level"] == "community" else None, cams)
    if s.get("note"):
        typer.secho(s["note"], fg=typer.colors.YELLOW, err=True)
    html = report.camera_map(res, out / "cameras.html")
    report.write_csv(out / "cameras.csv", res["layers"]["cameras"]["features"],
                     ["camera", "status", "model", "heading_deg", "range_m", "fov_deg", "targets_seen"], lonlat=True)
    report.write_csv(out / "blind_spots.csv", res["layers"]["blind_spots"]["features"], ["kind", "name", "weight"])
    report.write_summary(out / "cameras_summary.json", s)
    typer.echo(f"{s['area_name']}：{s['cameras']} 台摄像机（新增 {s['planned_cameras']}），"
               f"看到 {s['seen_targets']}/{s['targets']} 个目标，盲点 {s['blind_spots']}")
    typer.echo(f"saved {html}, {out / 'cameras.csv'}, {out / 'blind_spots.csv'}")


@siting_app.command("isochrones")
def isochrones_cmd(
    facility_type: str = typer.Option(..., "--type", help="设施类型，例如 幼儿园 / 社区卫生服务站"),
    minutes: str = typer.Option("5,10,15", "--minutes", help="comma-separated minutes of walking"),
    speed: float = typer.Option(None, "--speed", help="walking speed, m/min (default 75 = 4.5 km/h)"),
    community: str = typer.Option(None, "--community", help="admin code of the area (default: everything)"),
    out: Path = typer.Option(Path("report"), "-o", "--out", help="folder for isochrones.html + .geojson"),
) -> None:
    """步行等时圈 5/10/15-minute walking isochrones of the facilities of a type: offline map + GeoJSON."""
    from gis_api.db import get_engine
    from siting import report, service

    try:
        mins = tuple(float(m) for m in minutes.split(","))
    except ValueError:
        raise typer.BadParameter(f"--minutes: numbers separated by commas (got {minutes!r})") from None
    with get_engine().connect() as conn:
        res = service.isochrone_analysis(conn, facility_type, minutes=mins, speed_m_per_min=speed,
                                         community_code=community)
    out.mkdir(parents=True, exist_ok=True)
    (out / "isochrones.geojson").write_text(json.dumps(res["layers"]["isochrones"], ensure_ascii=False),
                                            encoding="utf-8")
    html = report.isochrone_map(res, out / "isochrones.html")
    s = res["summary"]
    typer.echo(f"{s['facility_type']}：{s['facilities']} 处，{s['isochrones']} 个等时圈，{s['seconds']} 秒")
    typer.echo(f"saved {html}, {out / 'isochrones.geojson'}")


@siting_app.command("report")
def report_cmd(
    scenario: int = typer.Argument(..., help="saved scenario id (GET /analysis/scenarios)"),
    out: Path = typer.Option(Path("report"), "-o", "--out", help="output folder"),
) -> None:
    """选址方案报告 a saved scenario as PDF (map + tables), CSV and GeoPackage."""
    from gis_api.db import get_engine
    from siting import documents, scenarios, store

    with get_engine().connect() as conn:
        sc = scenarios.get(conn, scenario)
        area = store.area_by_code(conn, sc["area_code"]) if sc["area_code"] else None
        _pts, footprints = store.residential_buildings(conn, area.geom_ll.wkt if area else None)
    context = [{"geometry": fp_ll.__geo_interface__, "properties": {}} for _fp, fp_ll in footprints]
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"scenario-{sc['id']}-v{sc['version']}"
    stem.with_suffix(".pdf").write_bytes(documents.scenario_pdf(sc, context))
    stem.with_suffix(".csv").write_bytes(documents.csv_bytes(
        sc["sites"]["features"], ["site", "status", "kind", "id", "name", "new_households_covered"]))
    stem.with_suffix(".gpkg").write_bytes(documents.gpkg_bytes({"sites": sc["sites"]}))
    typer.echo(f"saved {stem}.pdf, .csv, .gpkg")


@siting_app.command("types")
def types() -> None:
    """设施类型与服务半径 facility types, default radii and the GB 50180-2018 clause."""
    from siting.standards import FACILITY_TYPES

    for t in FACILITY_TYPES:
        typer.echo(f"{t.name:<12} {t.code:<26} {t.radius_m:>6g} m  {t.life_circle:<6} {t.clause}")


def register(app: typer.Typer) -> None:
    """Add the `shequ siting` sub-commands to the CLI."""
    app.add_typer(siting_app, name="siting")
