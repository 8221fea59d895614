"""`shequ residents demo`: synthetic residents, houses and units for the demo (一标三实), reproducible."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

residents_app = typer.Typer(help="一标三实 residents, houses and units on the standard addresses.",
                            no_args_is_help=True)


def _progress(iterable, total):
    from tqdm import tqdm

    return tqdm(iterable, desc="住户 dwellings", total=total, unit="batch", file=sys.stderr, leave=False)


@residents_app.command("demo")
def demo(
    seed: int = typer.Option(20240612, help="随机种子：同一种子生成同样的人 the same seed gives the same people"),
    community: str | None = typer.Option(None, "--community", help="只生成该社区 only this community's dwellings"),
    batch_size: int = typer.Option(200, min=1, max=5000, help="每批住户数 dwellings per transaction batch"),
) -> None:
    """生成合成（虚构）居民、房屋、单位（source=synthetic），与楼栋户数一致；幂等 generate synthetic residents
    consistent with the buildings' household estimates; idempotent (dwellings already done are skipped)."""
    from gis_api.commands.user import _audit
    from gis_api.db import get_engine
    from residents.service import load_synthetic

    with get_engine().begin() as conn:
        counts = load_synthetic(conn, seed, community, batch_size, progress=_progress)
        _audit(conn, "residents.synthetic", f"community:{community or '*'}", detail={"seed": seed, **counts})
    typer.echo(f"住户 dwellings {counts['dwellings']} (已有 already done {counts['skipped']})  "
               f"人员 people +{counts['person']}  房屋 houses +{counts['house_info']}  "
               f"单位 units +{counts['org_unit']}  重点人群 key-group flags +{counts['person_key_group']}")
    typer.echo("全部为合成数据（source=synthetic），非真实人员 all synthetic (source=synthetic), no real people")


@residents_app.command("import")
def import_(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV（UTF-8 / GB18030）或 .xlsx 文件"),
    kind: str = typer.Option(..., "--kind", help="people 人员 | houses 房屋 | units 单位"),
    mode: str = typer.Option("all", "--mode", help="all 全部成功才写入 | valid 只写入有效行"),
    dry_run: bool = typer.Option(False, "--dry-run", help="只校验不写入 validate only"),
    report: Path | None = typer.Option(None, "--report", help="把被拒绝的行写入 CSV write rejected rows to a CSV"),
) -> None:
    """批量导入实有人口、房屋或单位，逐行校验，报告被拒绝的行 bulk import with a per-row report."""
    import csv

    from gis_api.commands.user import _audit, cli_principal
    from gis_api.db import get_engine
    from residents.importer import import_file, read_rows

    rows = read_rows(path.read_bytes(), kind, path.name)
    out = import_file(get_engine(), kind, rows, cli_principal().actor, mode, dry_run, progress=_progress,
                      before_commit=lambda conn, rep: _audit(
                          conn, "residents.import", f"file:{path.name}",
                          detail={"kind": kind, "rows": rep["rows"], "imported": len(rep["written"]),
                                  "rejected": len(rep["rejected_rows"]), "mode": mode}))
    for e in out["errors"][:50]:
        typer.echo(f"第 {e['row']} 行 row {e['row']}  {e['field']}: {e['reason']}", err=True)
    if report is not None:
        with report.open("w", newline="", encoding="utf-8-sig") as fh:
            w = csv.writer(fh)
            w.writerow(["row", "field", "reason"])
            w.writerows([e["row"], e["field"], e["reason"]] for e in out["errors"])
    typer.echo(f"行 rows {out['rows']}  写入 imported {out['imported']}  拒绝 rejected {len(out['rejected_rows'])}"
               f"  ({'已提交 committed' if out['committed'] else '未写入 nothing written'})")
    if out["errors"] and mode == "all":
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``shequ residents …`` to the CLI."""
    app.add_typer(residents_app, name="residents")
