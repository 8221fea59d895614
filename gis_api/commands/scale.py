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
) -> None:
    """合成城市 grow a synthetic city of about N addresses from the real roads and districts (every row marked
    synthetic; written to the current database, which must hold no real addresses: use a database of its own,
    with `shequ demo load` run first for the roads and districts)."""
    from address_registry import synth
    from address_registry.errors import AddressConflict, InvalidAddress
    from address_registry.geocoder_cache import mark_stale
    from address_registry.store import synthetic as synth_store
    from gis_api.settings import get_settings

    synth.check_fits(addresses, available_memory_bytes())  # TooLarge: the estimate, exit 1
    shared = Path(data_dir) if data_dir else get_settings().shared_data_dir
    t0 = time.time()
    inputs = synth.inputs_from_files(shared)
    city = synth.grow_city(inputs["roads"], inputs["districts"], addresses, seed=seed,
                           admin_names=inputs["admin_names"])
    typer.echo(
        f"grown in {time.time() - t0:.1f}s: {len(city.records):,} addresses, {len(city.buildings):,} buildings, "
        f"{city.households:,} households, {city.stats.get('compound', 0)} compounds (seed {seed})"
    )
    if dry_run:
        return
    from gis_api.db import get_engine

    t1 = time.time()
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
        counts = synth_store.write_city(conn, city)
        mark_stale(conn)
    typer.echo(
        f"written in {time.time() - t1:.1f}s: {counts['addresses']:,} addresses, {counts['buildings']:,} buildings,"
        f" {counts['aliases']:,} aliases (replaced {removed['addresses']:,} synthetic addresses)"
    )


def register(app: typer.Typer) -> None:
    """``demo synth`` is declared on the ``demo`` sub-app of gis_api.commands.core."""
