"""`shequ key-places seed`: the key-place registry (重点场所) seeded from the demo's OSM POIs by category."""

from __future__ import annotations

import typer

key_places_app = typer.Typer(help="重点场所 key places on the standard addresses.", no_args_is_help=True)


@key_places_app.command("seed")
def seed(max_address_m: float = typer.Option(150.0, min=1.0, max=1000.0,
                                             help="关联标准地址的最大距离（米） farthest standard address to tie to")) -> None:
    """由 OSM 兴趣点按类别映射生成重点场所（幂等） seed key places from the POIs by the category mapping."""
    from gis_api.commands.user import _audit, cli_principal
    from gis_api.db import get_engine
    from residents.key_places import seed_from_pois

    with get_engine().begin() as conn:
        added = seed_from_pois(conn, cli_principal().actor, max_address_m)
        _audit(conn, "key_place.seed", "key_place:osm", detail={"added": added})
    total = sum(added.values())
    typer.echo(f"重点场所 key places +{total}  " + "  ".join(f"{k} {v}" for k, v in sorted(added.items())))


def register(app: typer.Typer) -> None:
    """Add ``shequ key-places …`` to the CLI."""
    app.add_typer(key_places_app, name="key-places")
