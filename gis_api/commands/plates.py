"""`shequ plates print`: print-ready PDF sheets of QR door plates for a road, a compound or a community."""

from __future__ import annotations

from pathlib import Path

import typer

plates_app = typer.Typer(help="二维码门牌 QR door plates.", no_args_is_help=True)


@plates_app.command("print")
def print_plates(
    output: Path = typer.Option(..., "-o", "--output", help="输出 PDF 文件 the PDF to write"),
    road: str | None = typer.Option(None, "--road", help="街路巷编码 a road's code: its house numbers and below"),
    compound: str | None = typer.Option(None, "--compound", help="小区编码 a compound's code"),
    community: str | None = typer.Option(None, "--community", help="社区代码 a community's code"),
    size: str = typer.Option("medium", help="门牌规格 plate size: large 570×370, medium 270×170, small 150×90 mm"),
    levels: str = typer.Option("house_number", help="门牌层级，逗号分隔 levels, comma-separated: "
                               "house_number, compound, building, unit, room"),
) -> None:
    """写出可印制的二维码门牌 PDF（每页一块，实际尺寸，嵌入中文字体） write print-ready plates, one per page."""
    from address_registry.plate_pdf import SIZES, plates_pdf
    from geo.errors import InvalidInput
    from gis_api.auth.secrets import load_or_create
    from gis_api.commands.user import _audit
    from gis_api.db import get_engine
    from gis_api.plates import KEY_NAME, plate_selection
    from gis_api.settings import get_settings

    chosen = [(k, v) for k, v in (("road", road), ("compound", compound), ("community", community)) if v]
    if len(chosen) != 1:
        raise InvalidInput("请只给出 --road、--compound、--community 之一 give exactly one of --road, --compound, "
                           "--community")
    if size not in SIZES:
        raise InvalidInput(f"门牌规格无效 size must be one of {sorted(SIZES)}")
    kind, area = chosen[0]
    with get_engine().begin() as conn:
        recs = plate_selection(conn, kind, area, tuple(x.strip() for x in levels.split(",") if x.strip()))
        pdf = plates_pdf(recs, get_settings().public_base_url, load_or_create(KEY_NAME), size)
        _audit(conn, "plates.print", f"{kind}:{area}", detail={"count": len(recs), "size": size})
    output.write_bytes(pdf)
    typer.echo(f"门牌 plates {len(recs)} ({SIZES[size].title} {size}) → {output}")


@plates_app.command("demo-contacts")
def demo_contacts() -> None:
    """为演示网格补充网格员联系人（合成姓名，标注“演示”） demo grid staff so plates show whom to contact."""
    from gis_api.commands.user import _audit
    from gis_api.db import get_engine
    from gis_api.plates import seed_demo_contacts

    with get_engine().begin() as conn:
        added = seed_demo_contacts(conn)
        _audit(conn, "grid.staff_demo", "grid_staff:demo", detail=added)
    typer.echo("演示网格人员 demo grid staff: " + "  ".join(f"{k} +{v}" for k, v in added.items())
               + "（合成姓名，非真实人员 synthetic names）")


def register(app: typer.Typer) -> None:
    """Add ``shequ plates …`` to the CLI."""
    app.add_typer(plates_app, name="plates")
