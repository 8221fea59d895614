"""`shequ residents demo`: synthetic residents, houses and units for the demo (一标三实), reproducible."""

from __future__ import annotations

import sys

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


def register(app: typer.Typer) -> None:
    """Add ``shequ residents …`` to the CLI."""
    app.add_typer(residents_app, name="residents")
