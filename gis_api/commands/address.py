"""`shequ address build|show|history`: the standard-address registry from the command line."""

from __future__ import annotations

import json
import sys

import typer

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
    from address_registry.service import RegistryError, build_registry
    from gis_api.db import get_engine

    factory, bars = _bar_factory()
    try:
        with get_engine().begin() as conn:
            stats = build_registry(conn, progress_factory=factory)
    except RegistryError as exc:
        _fail(exc.message)
    finally:
        for bar in bars:
            bar.close()
    labels = {"road": "道路 roads", "house_number_osm": "门牌（OSM） house numbers from OSM tags",
              "house_number_generated": "门牌（生成） generated house numbers", "building": "楼栋 buildings",
              "created": "新增 created", "updated": "新版本 new versions", "unchanged": "未变 unchanged",
              "aliases_created": "新增别名 aliases created"}
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
            _fail(f"no address {code}")
        out = store.record_to_json(rec) | {"aliases": store.aliases_of(conn, code)}
    typer.echo(json.dumps(out, ensure_ascii=False, indent=2))


def register(app: typer.Typer) -> None:
    app.add_typer(address_app, name="address")
