"""`shequ grid boundaries|build|import|h3|validate|staff`: townships, communities, grids, micro-grids, H3."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import NoReturn

import typer

grid_app = typer.Typer(
    help="网格 townships/communities, grids, micro-grids and H3 cells.", no_args_is_help=True
)


def _fail(message: str) -> NoReturn:
    """Print a usage problem found by the command itself and exit with status 1."""
    typer.secho(f"错误 error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def _engine():
    from gis_api.db import get_engine

    return get_engine()


@grid_app.command("boundaries")
def boundaries(
    district: list[str] = typer.Option(
        None,
        "--district",
        help="区县代码，可重复（缺省：所有含建筑的区县 default: every district holding buildings)",
    ),
    community_min: int = typer.Option(1000, help="社区最少户数"),
    community_max: int = typer.Option(3000, help="社区最多户数"),
    township_min: int = typer.Option(5000, help="街道最少户数"),
    township_max: int = typer.Option(15000, help="街道最多户数"),
    extent: str = typer.Option(
        "demo", "--extent",
        help="划分范围：demo（演示数据范围内的建筑，默认）| buildings（全部建筑，如合成城市）",
    ),
) -> None:
    """由道路网和区县边界生成临时街道、社区（source=provisional） derive provisional townships and communities."""
    from grid_builder.service import derive_boundaries

    if not (0 < community_min <= community_max) or not (0 < township_min <= township_max):
        _fail("户数区间无效 (invalid household band)")
    res = derive_boundaries(
        _engine(),
        list(district) if district else None,
        (township_min, township_max),
        (community_min, community_max),
        extent=extent,
    )
    typer.echo(
        f"临时街道 townships: {res['townships']}  临时社区 communities: {res['communities']}"
        f"  (removed {res['removed']})"
    )
    for u in res["units"]:
        flag = f"  [{', '.join(u.flags)}]" if u.flags else ""
        indent = "  " if u.level == "community" else ""
        typer.echo(f"{indent}{u.code} {u.name} {round(u.households)} 户{flag}")
    for n in res["notes"]:
        typer.secho(f"注意 note: {n}", fg=typer.colors.YELLOW)


@grid_app.command("build")
def build(
    community: str = typer.Option(None, "--community", help="社区代码 (12 位)"),
    all_: bool = typer.Option(False, "--all", help="所有社区"),
    needs_rebuild: bool = typer.Option(
        False,
        "--needs-rebuild",
        help="只划分需要的社区：尚无网格的，及取代了已撤销临时社区的（导入边界之后）",
    ),
    target_min: int = typer.Option(300, help="网格最少户数 (老旧小区可用 200)"),
    target_max: int = typer.Option(500, help="网格最多户数 (老旧小区可用 300)"),
    micro_min: int = typer.Option(30, help="微网格最少户数"),
    micro_max: int = typer.Option(50, help="微网格最多户数"),
    h3_res: int = typer.Option(10, help="--all 时为每个街道刷新 H3 图层（中心在内）的分辨率；0 不刷新"),
    workers: int = typer.Option(0, "--workers", min=0, max=64,
                                help="并行进程数 (--all / --needs-rebuild): N 个 Dask 本地工作进程，每个社区一个任务；0 = 本进程逐个"),
    scheduler: str | None = typer.Option(None, "--scheduler", help="Dask 调度器 use this scheduler (tcp://host:8786)"),
) -> None:
    """划分网格与微网格（每个社区一个事务） build grids and micro-grids, one transaction per community."""
    from tqdm import tqdm

    from grid_builder.build import BuildConfig
    from grid_builder.service import build_all, build_community, communities_needing_build

    if bool(community) + bool(all_) + bool(needs_rebuild) != 1:
        _fail("请指定 --community CODE、--all 或 --needs-rebuild 之一 (give exactly one of them)")
    cfg = BuildConfig(grid_min=target_min, grid_max=target_max, micro_min=micro_min, micro_max=micro_max)
    bad = cfg.check()
    if bad:
        _fail("; ".join(bad))
    if community:
        reports = [build_community(_engine(), community, cfg)]
    else:
        codes = communities_needing_build(_engine()) if needs_rebuild else None
        if codes == []:
            typer.echo("没有需要重建网格的社区 (nothing needs a rebuild)")
            return
        if workers or scheduler:
            from gis_api.commands.province import check_cluster

            check_cluster(scheduler, "worker")  # each worker builds with its own connection
        reports = build_all(
            _engine(),
            cfg,
            codes=codes,
            progress=lambda it: tqdm(it, desc="社区 communities", file=sys.stderr, leave=False),
            workers=workers,
            scheduler=scheduler,
        )
    if not reports:
        _fail("没有社区：先运行 `shequ grid boundaries` 或 `shequ grid import` (no communities yet)")
    tot_g = tot_in = 0
    failed = 0
    for r in reports:
        tot_g += r.grids
        tot_in += r.in_band
        state = "失败 FAILED" if "failed" in r.flags else (f"v{r.version}" if r.written else "未写入")
        typer.echo(
            f"{r.community_code} {state}: {r.grids} 网格 ({r.in_band} 在区间内), {r.microgrids} 微网格, "
            f"{r.households} 户" + (f"  [尽力而为 best effort: {', '.join(r.flags)}]" if r.flags else "")
        )
        for m in r.messages:
            typer.secho(f"    {m}", fg=typer.colors.YELLOW)
        for i in r.issues:
            typer.secho(f"    校验 {i['kind']}: {i['message']}", fg=typer.colors.RED)
        failed += "failed" in r.flags
    typer.echo(f"合计 total: {tot_g} 网格, {tot_in} 在 {target_min}–{target_max} 户区间内")
    if failed == len(reports):
        raise typer.Exit(1)
    if all_ and h3_res:
        from grid_builder import store
        from grid_builder.errors import GridError
        from grid_builder.service import h3_for_area

        with _engine().connect() as conn:
            towns = [u["code"] for u in store.admin_units(conn, "township")]
        for t in towns:
            try:
                cells = h3_for_area(_engine(), t, h3_res, "center", save=True)
            except GridError as exc:
                typer.secho(f"H3 {t}: {exc.message}", fg=typer.colors.YELLOW)
                continue
            typer.echo(f"H3 {t} res {h3_res} center: {len(cells)} 个单元已写入 h3_cell")


@grid_app.command("import")
def import_(
    path: Path = typer.Argument(..., help="GeoJSON / GPKG / SHP"),
    code_field: str = typer.Option("code", help="编码字段"),
    name_field: str = typer.Option("name", help="名称字段"),
    parent_field: str = typer.Option(None, help="上级编码字段（缺省取编码前缀）"),
    crs: str = typer.Option("wgs84", help="坐标系 wgs84|cgcs2000|gcj02（文件未声明时）"),
    layer: str = typer.Option(None, help="GPKG 图层"),
    dry_run: bool = typer.Option(False, "--dry-run", help="只显示将导入和将撤销的内容，不写入"),
    by: str = typer.Option(None, "--by", help="操作人（记入被撤销单元的 retired.by；缺省为系统用户名）"),
    min_share: float = typer.Option(
        0.5, "--min-share", help="临时单元面积被导入单元覆盖达到此比例即撤销 (0–1]"
    ),
) -> None:
    """导入城市自有的街道、社区边界（编码 9/12 位），并撤销被其覆盖的临时单元（同一事务）
    import a city's own boundaries; the provisional units they cover are retired in the same transaction."""
    import getpass

    from grid_builder.importer import import_boundaries, read_boundaries

    who = by or f"{getpass.getuser()} (shequ grid import)"
    records, problems = read_boundaries(path, code_field, name_field, parent_field, crs, layer)
    for p in problems:
        typer.secho(f"注意 note: {p}", fg=typer.colors.YELLOW)
    res = import_boundaries(
        _engine(), records, dry_run=dry_run, by=who, source_name=path.name, min_share=min_share
    )
    verb = "将导入 would import (dry run, nothing written)" if dry_run else "已导入 imported"
    typer.echo(f"{verb}: {res['townships']} 街道, {res['communities']} 社区")
    head = "将撤销 would retire" if dry_run else "已撤销 retired"
    typer.echo(f"{head}: {len(res['retired'])} 个临时单元（面积被导入单元覆盖 ≥ {res['min_share']:.0%}）")
    for u in res["retired"]:
        grids = f", {u['grids_needing_rebuild']} 个网格需重建" if u.get("grids_needing_rebuild") else ""
        typer.echo(f"  {u['code']} {u['name']} 覆盖 {u['share']:.0%} → {'、'.join(u['replaced_by'])}{grids}")
    for u in res["partial"]:
        typer.secho(
            f"注意 note: 临时单元 {u['code']} {u['name']} 仅 {u['share']:.0%} 被覆盖，保留（与导入单元重叠，"
            f"见 shequ grid validate）",
            fg=typer.colors.YELLOW,
        )
    if res["buildings_outside"]:
        typer.secho(
            f"注意 note: {res['buildings_outside']} 栋建筑位于被撤销社区内、但不在任何现行社区内",
            fg=typer.colors.YELLOW,
        )
    if res["grids_needing_rebuild"] or res["to_build"]:
        typer.secho(
            f"需重建网格 needs rebuild: {res['grids_needing_rebuild']} 个网格属于被撤销社区；"
            f"待划分社区 {len(res['to_build'])} 个 — 运行 shequ grid build --needs-rebuild"
            f"（或 --community CODE）",
            fg=typer.colors.YELLOW,
        )


@grid_app.command("h3")
def h3_cmd(
    area: str = typer.Option(..., "--area", help="行政区或网格编码"),
    res: int = typer.Option(10, "--res", help="分辨率 7–12"),
    mode: str = typer.Option("center", "--mode", help="center | overlap | full"),
    out: Path = typer.Option(None, "--out", help="另存 GeoJSON 文件"),
    save: bool = typer.Option(True, "--save/--no-save", help="写入 h3_cell 表（地图图层）"),
) -> None:
    """区域的 H3 单元及每格统计 H3 cells of an area with counts per cell."""
    from geo.geojson import feature, feature_collection
    from grid_builder.service import h3_for_area

    cells = h3_for_area(_engine(), area, res, mode, save=save)
    hh = sum(c["households"] for c in cells)
    typer.echo(
        f"{area} res {res} {mode}: {len(cells)} 个单元, {round(hh)} 户, "
        f"{sum(c['buildings'] for c in cells)} 栋建筑, {sum(c['pois'] for c in cells)} 个兴趣点"
        + (", 已写入 h3_cell" if save else "")
    )
    if out:
        fc = feature_collection(feature(c["geom"], {k: v for k, v in c.items() if k != "geom"}) for c in cells)
        out.write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")
        typer.echo(f"GeoJSON: {out}")


@grid_app.command("validate")
def validate(
    community: str = typer.Option(None, "--community", help="社区代码；缺省为全部"),
) -> None:
    """校验网格层级：缝隙、重叠、嵌套、建筑归属 check gaps, overlaps, nesting, building membership."""
    from grid_builder import store
    from grid_builder.errors import GridError
    from grid_builder.service import unit_issues, validate_stored

    eng = _engine()
    n_bad = 0
    if community:
        codes = [community]
    else:
        with eng.connect() as conn:
            codes = [u["code"] for u in store.admin_units(conn, "community")]
        # across units: overlapping active townships/communities, retired parents, grids needing a rebuild
        for i in unit_issues(eng):
            n_bad += 1
            typer.secho(f"{i['kind']}: {i['message']}", fg=typer.colors.RED)
        typer.echo(f"区划单元 units: {'通过 ok' if not n_bad else f'{n_bad} 个问题'}")
    for code in codes:
        try:
            issues = validate_stored(eng, code)
        except GridError as exc:
            typer.secho(f"{code}: {exc.message}", fg=typer.colors.YELLOW)
            n_bad += 1
            continue
        if issues:
            n_bad += 1
            for i in issues:
                typer.secho(f"{code} {i['kind']}: {i['message']}", fg=typer.colors.RED)
        else:
            typer.echo(f"{code}: 通过 ok")
    if n_bad:
        raise typer.Exit(1)


staff_app = typer.Typer(help="网格员 / 微网格长 任命与历史 grid staff.", no_args_is_help=True)
grid_app.add_typer(staff_app, name="staff")


@staff_app.command("assign")
def staff_assign(
    code: str = typer.Argument(..., help="网格（15 位）或微网格（17 位）编码"),
    person: str = typer.Option(..., "--person", help="人员引用，如 person:123"),
    role: str = typer.Option(
        "网格员", "--role", help="网格员|网格长|专职网格员|兼职网格员（网格）；微网格长（微网格）"
    ),
    valid_from: str = typer.Option(None, "--from", help="任职开始 ISO 时间（带时区），缺省为现在"),
) -> None:
    """任命：前任的任期在新任开始时结束（历史保留） assign a person; the previous holder's term is closed."""
    from datetime import datetime

    from grid_builder.service import assign_grid_staff

    start = None
    if valid_from:
        try:
            start = datetime.fromisoformat(valid_from)
        except ValueError:
            _fail(f"--from 不是 ISO 时间 (not an ISO date-time): {valid_from}")
    res = assign_grid_staff(_engine(), code, person, role, start)
    a = res["assignment"]
    if not res["changed"]:
        typer.echo(f"{code} {role}: {a['person_ref']} 已在任 (since {a['valid_from']})，未改变")
        return
    typer.echo(f"{code} {role}: {a['person_ref']} 自 {a['valid_from']} 起任职")
    if res["closed"]:
        typer.echo(f"  前任 {res['closed']['person_ref']} 任期结束于 {res['closed']['valid_to']}")


@staff_app.command("list")
def staff_list(
    code: str = typer.Argument(..., help="网格或微网格编码"),
    current: bool = typer.Option(False, "--current", help="只列现任"),
) -> None:
    """人员及任职历史 staff of a grid / micro-grid with history."""
    from grid_builder.service import grid_staff

    rows = grid_staff(_engine(), code, current)
    if not rows:
        typer.echo(f"{code}: 尚无任命 (no staff)")
    for r in rows:
        term = "现任" if r["current"] else f"至 {r['valid_to']}"
        typer.echo(f"{r['role']}\t{r['person_ref']}\t自 {r['valid_from']}\t{term}")


def register(app: typer.Typer) -> None:
    """Add ``shequ grid …`` to the CLI."""
    app.add_typer(grid_app, name="grid")
