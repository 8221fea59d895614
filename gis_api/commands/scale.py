"""Scale commands (issue 14): ``shequ demo synth`` — a synthetic city grown from the demo's real structure."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from gis_api.commands.core import demo_app


def available_memory_bytes() -> int:
    """MemAvailable of /proc/meminfo (what a new allocation can use without swapping)."""
    with open("/proc/meminfo", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise OSError("MemAvailable not in /proc/meminfo")


@demo_app.command("synth")
def demo_synth(
    addresses: int = typer.Option(..., "--addresses", "-n", help="目标标准地址数 target number of standard addresses"),
    seed: int = typer.Option(0, "--seed", help="随机种子 seed (the same seed gives the same city)"),
    data_dir: str | None = typer.Option(None, "--data-dir", help="shared data folder (default ../shared/data)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="只生成并统计，不写库 grow and count, write nothing"),
    tiles: str = typer.Option(
        "auto", "--tiles",
        help="分块数 tiles: auto = 真实街区容纳不下时按 --tile-capacity 分块 (one while the real blocks hold N), "
             "或整数 K (the real structure repeated as K translated tiles)",
    ),
    tile_capacity: int = typer.Option(
        1_200_000, "--tile-capacity", help="--tiles auto 时每块地址数上限 addresses per tile under --tiles auto",
    ),
) -> None:
    """合成城市 grow a synthetic city of about N addresses from the real roads and districts (every row marked
    synthetic; written to the current database, which must hold no real addresses: use a database of its own,
    with `shequ demo load` run first for the roads and districts). Beyond the real blocks' capacity the real
    structure is tiled: K translated copies west of the real districts, each with synthetic districts
    (codes 9TTTDD, names 合成T-…区) — grown, written and let go one tile at a time."""
    from address_registry import synth
    from address_registry.errors import AddressConflict, InvalidAddress
    from address_registry.geocoder_cache import mark_stale
    from address_registry.store import synthetic as synth_store
    from gis_api.settings import get_settings

    count = synth.tile_count(addresses, tiles, tile_capacity)
    # one tile is held at a time: the estimate is that of the largest tile
    synth.check_fits(max(synth.tile_shares(addresses, count)), available_memory_bytes())  # TooLarge, exit 1
    shared = Path(data_dir) if data_dir else get_settings().shared_data_dir
    t0 = time.time()
    inputs = synth.inputs_from_files(shared)
    grown = synth.grow_tiles(inputs["roads"], inputs["districts"], addresses, count, seed=seed,
                             admin_names=inputs["admin_names"], node_ids=inputs["node_ids"])
    totals = {"addresses": 0, "buildings": 0, "households": 0, "aliases": 0, "districts": 0}
    if dry_run:
        for base, city in grown:
            _report_tile(base, city, count, totals, t0)
            del city  # one tile held at a time: let it go before the next is grown
        typer.echo(f"grown in {time.time() - t0:.1f}s: {totals['addresses']:,} addresses in {count} tile(s),"
                   f" {totals['buildings']:,} buildings, {totals['households']:,} households (seed {seed})")
        return
    from gis_api.db import get_engine

    with get_engine().begin() as conn:
        if not synth_store.has_districts(conn):
            raise InvalidAddress("目标库没有区县边界：请先运行 `shequ demo load` (the database has no district polygons:"
                                 " run `shequ demo load` first — the registry's checks and the geocoder read them)")
        real = synth_store.real_address_count(conn)
        if real:
            raise AddressConflict(
                f"目标库已有 {real:,} 个非合成地址：合成城市须写入单独的数据库 the database holds {real:,} real addresses;"
                " write the synthetic city into a database of its own (DATABASE_URL or SHEQU_PG_DIR)"
            )
        removed = synth_store.remove_synthetic(conn)
        for base, city in grown:
            _report_tile(base, city, count, totals, t0)
            if base is not None:
                totals["districts"] += synth_store.write_tile_base(conn, base)["districts"]
            totals["aliases"] += synth_store.write_city(conn, city)["aliases"]
            del city  # one tile held at a time: let it go before the next is grown
        mark_stale(conn)
    typer.echo(
        f"written in {time.time() - t0:.1f}s: {totals['addresses']:,} addresses in {count} tile(s)"
        f" ({totals['districts']} synthetic districts), {totals['buildings']:,} buildings, {totals['aliases']:,}"
        f" aliases (replaced {removed['addresses']:,} synthetic addresses)"
    )


def _report_tile(base, city, count: int, totals: dict[str, int], t0: float) -> None:
    totals["addresses"] += len(city.records)
    totals["buildings"] += len(city.buildings)
    totals["households"] += city.households
    where = "the real place" if base is None else f"{len(base.districts)} districts, offset {base.tile.offset_deg[0]:+.3f}°"
    typer.echo(
        f"tile {city.tile_index + 1}/{count} ({where}) grown at {time.time() - t0:.1f}s: {len(city.records):,}"
        f" addresses, {len(city.buildings):,} buildings, {city.households:,} households,"
        f" {city.stats.get('compound', 0)} compounds"
    )


def register(app: typer.Typer) -> None:
    """``demo synth`` is declared on the ``demo`` sub-app of gis_api.commands.core."""
