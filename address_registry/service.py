"""Registry operations, one face: the build orchestration lives here; the rest is re-exported.

- `build_registry`: plan the registry from the base tables (`build.plan_registry`) and write it;
- single addresses: `lifecycle` (create / correct / retire / merge / split / alias);
- compounds (小区) drawn by a person and their geometry rules: `compounds`;
- the shared rules of every change: `rules`; the errors: `errors`;
- bulk import: `importer`; the per-database geocoder: `geocoder_cache`.

Every operation runs on a connection inside the caller's transaction, so a rejected change writes
nothing, and marks the geocoder stale when that transaction commits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from address_registry import store
from address_registry.build import plan_registry
from address_registry.compounds import (
    COMPOUND_DISTRICT_MIN_SHARE,
    COMPOUND_MAX_OVERLAP,
    area_from_geojson,
    area_wgs84,
    check_area,
    correct_compound,
    create_compound,
)
from address_registry.errors import AddressConflict, AddressNotFound, InvalidAddress, RegistryError
from address_registry.geocoder_cache import (
    GeocoderCache,
    cache_for,
    free_text_parser,
    geocoder_for,
    invalidate,
    mark_stale,
    open_cache,
)
from address_registry.importer import import_addresses, import_all_or_nothing
from address_registry.lifecycle import (
    add_alias,
    correct_address,
    correct_with_members,
    create_address,
    merge_addresses,
    retire_address,
    split_address,
)
from address_registry.rules import ALIAS_KINDS, OWN_PATTERNS, canonical_own

__all__ = [
    "ALIAS_KINDS",
    "COMPOUND_DISTRICT_MIN_SHARE",
    "COMPOUND_MAX_OVERLAP",
    "OWN_PATTERNS",
    "AddressConflict",
    "AddressNotFound",
    "GeocoderCache",
    "InvalidAddress",
    "RegistryError",
    "add_alias",
    "area_from_geojson",
    "area_wgs84",
    "build_registry",
    "build_registry_staged",
    "cache_for",
    "canonical_own",
    "check_area",
    "correct_address",
    "correct_compound",
    "correct_with_members",
    "create_address",
    "create_compound",
    "free_text_parser",
    "geocoder_for",
    "import_addresses",
    "import_all_or_nothing",
    "invalidate",
    "merge_addresses",
    "open_cache",
    "retire_address",
    "split_address",
]


def _build_inputs(conn, progress_factory=None) -> tuple[dict[str, Any], list, Callable[[str, int], None]]:
    """The plan's inputs from the base tables, the current registry (compounds with their former names) and
    the progress ticker of a build."""
    if store.has_tiled_city(conn):
        # its roads are grouped by name across tiles: one name would become one road spanning them
        raise InvalidAddress("本库含平铺的合成城市（多个图块）：其地址库只能由 `shequ demo synth` 按图块规划，"
                             "不能用 address build 重建 (a tiled synthetic city: its registry is planned per tile "
                             "by `shequ demo synth`; run it again instead)")
    inputs = store.load_build_inputs(conn)
    if not inputs["districts"]:
        raise InvalidAddress("没有区县边界 no district boundaries in admin_unit: run `shequ demo load` first")
    existing = store.all_current(conn)
    # a compound renamed by a person is still found by its former (OSM) name: same code, name kept
    former = store.former_names(conn)
    for rec in existing:
        if rec.level == "compound":
            rec.aliases = former.get(rec.code, [])
    bars = {}

    def tick(stage: str, n: int) -> None:
        if progress_factory is None:
            return
        if stage not in bars:
            total = {
                "roads": len({r.name for r in inputs["roads"]}),
                "buildings": len(inputs["buildings"]),
            }.get(stage)
            bars[stage] = progress_factory(f"{'道路 roads' if stage == 'roads' else '建筑 buildings'}", total)
        bars[stage](n)

    return inputs, existing, tick


def _build_stats(plan_stats: dict[str, int], counts: dict[str, int], planned: int, inputs: dict) -> dict[str, Any]:
    return {
        **plan_stats,
        **counts,
        "planned": planned,
        "communities": len(inputs["communities"]),
        "townships": len(inputs["townships"]),
    }


def build_registry(conn, progress_factory=None, plan: Callable[..., Any] = plan_registry) -> dict[str, Any]:
    """Plan the registry from the base tables and write it (idempotent). ``plan`` is `plan_registry` or one
    taking the same arguments (`address_registry.province.plan_registry_on_dask`: the same plan, on Dask)."""
    inputs, existing, tick = _build_inputs(conn, progress_factory)
    planned = plan(existing=existing, progress=tick, **inputs)
    write_bar = progress_factory("写入 writing addresses", len(planned.records)) if progress_factory else None
    counts = store.apply_plan(conn, planned, progress=write_bar)
    mark_stale(conn)
    return _build_stats(planned.stats, counts, len(planned.records), inputs)


def build_registry_staged(conn, staging: store.Staging, progress_factory=None,
                          stage: Callable[..., Any] | None = None, **dask: Any) -> dict[str, Any]:
    """`build_registry` with the records written by the Dask workers (issue 14 §3): planned by
    `address_registry.province.stage_registry_on_dask` (``stage``, called with ``dask``: workers, scheduler,
    client) into ``staging`` (made and dropped by the caller around ``conn``'s transaction:
    `store.registry_staging`), then moved into the registry in ``conn``'s transaction (`store.apply_staged`).
    The same registry and counts as `build_registry`."""
    from address_registry.province import stage_registry_on_dask

    inputs, existing, tick = _build_inputs(conn, progress_factory)
    staged = (stage or stage_registry_on_dask)(conn, staging, existing=existing, progress=tick, **dask, **inputs)
    counts = store.apply_staged(conn, staging, staged.expected)
    mark_stale(conn)
    return _build_stats(staged.stats, counts, staged.planned, inputs)
