"""Use cases shared by the CLI and the API: core + store, one transaction per unit of work."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import shapely
from shapely.geometry import box, mapping
from sqlalchemy.engine import Engine

from grid_builder import h3grid, staff, store
from grid_builder.build import BuildConfig
from grid_builder.demo_data import DEMO_BBOX
from grid_builder.errors import GridConflict, GridError, GridNotFound, InvalidGridInput, NoBaseData
from grid_builder.geom import to_metric, to_wgs84
from grid_builder.importer import RETIRE_MIN_SHARE
from grid_builder.pipeline import community_grids, provisional_boundaries, to_lonlat
from grid_builder.validate import Issue, validate_community

# GridError lived here before grid_builder.errors; importing it from here still works
__all__ = [
    "CommunityReport",
    "GridError",
    "assign_grid_staff",
    "build_all",
    "build_community",
    "communities_needing_build",
    "derive_boundaries",
    "grid_staff",
    "h3_for_area",
    "unit_issues",
    "validate_stored",
]


@dataclass
class CommunityReport:
    """Outcome of building one community: counts, flags, messages, issues, the version written."""

    community_code: str
    version: int | None
    grids: int
    microgrids: int
    households: int
    in_band: int
    flags: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    issues: list[dict] = field(default_factory=list)
    written: bool = False
    closed_retired: list[dict] = field(
        default_factory=list
    )  # grids of retired communities closed by this build

    @property
    def best_effort(self) -> bool:
        """True when the build carries any flag."""
        return bool(self.flags)


def derive_boundaries(
    engine: Engine,
    district_codes: list[str] | None = None,
    township_band=(5_000, 15_000),
    community_band=(1_000, 3_000),
    extent: str = "demo",
) -> dict:
    """Provisional townships/communities, written in one transaction. Default districts: every district
    that holds a building anchor (derived from the data, so no building is left outside a community).
    ``extent``: ``demo`` divides the buildings' extent inside the demo's Tilezen extract (whose water and
    rail lines the division also follows); ``buildings`` divides the whole extent of the buildings (a
    synthetic city grown beyond the extract, issue 14: outside it only the roads divide)."""
    if extent not in ("demo", "buildings"):
        raise InvalidGridInput(f"范围应为 demo 或 buildings (extent must be demo or buildings): {extent!r}")
    with engine.begin() as conn:
        district_codes = district_codes or store.districts_with_buildings(conn)
        if not district_codes:
            raise NoBaseData(
                "没有建筑数据，无法确定演示范围 (no buildings in any district: load the demo first)"
            )
        districts = {}
        for code in district_codes:
            u = store.admin_unit(conn, code)
            if u is None or u["geom"] is None:
                raise GridNotFound(f"区县 {code} 不存在或没有边界 (district not found or without boundary)")
            districts[code] = (u["name"], u["geom"])
        ext = store.building_extent(conn)
        if ext is None:
            raise NoBaseData("没有建筑数据，无法确定演示范围 (no buildings: load the demo first)")
        # the demo area: building extent, never beyond the Tilezen bbox (unless the whole extent is asked for)
        clip = DEMO_BBOX if extent == "demo" else ext
        area = box(
            max(ext[0], clip[0]),
            max(ext[1], clip[1]),
            min(ext[2], clip[2]),
            min(ext[3], clip[3]),
        )
        roads = store.roads_in(conn, area)
        rails = store.rails_in(conn, area)
        water = store.water_in(conn, area)
        buildings = store.buildings_in(conn, area)
        units, notes = provisional_boundaries(
            districts, area, roads, rails, water, buildings, township_band, community_band
        )
        if not units:
            raise InvalidGridInput("演示范围内没有可划分的区县土地 (nothing to divide inside the demo area)")
        res = store.replace_provisional_units(conn, district_codes, units)
        # a city's own boundaries win over a re-derivation: the same rule as `shequ grid import`
        retired = []
        for level in ("township", "community"):
            gone = [c for c in store.provisional_coverage(conn, level) if c["share"] >= RETIRE_MIN_SHARE]
            store.retire_admin_units(
                conn,
                gone,
                "shequ grid boundaries",
                "重新生成时已被导入的正式边界覆盖 (covered by imported boundaries)",
            )
            retired += gone
    return {
        "retired": retired,
        "townships": sum(u.level == "township" for u in units),
        "communities": sum(u.level == "community" for u in units),
        "removed": res["removed"],
        "notes": notes,
        "units": units,
        "household_source": "households_est" if not buildings else None,
    }


def build_community(
    engine: Engine, community_code: str, cfg: BuildConfig | None = None, write: bool = True
) -> CommunityReport:
    """Grids + micro-grids of one community, written in one transaction (nothing when it fails)."""
    cfg = cfg or BuildConfig()
    bad = cfg.check()
    if bad:
        raise InvalidGridInput("; ".join(bad))
    with engine.begin() as conn:
        unit = store.admin_unit(conn, community_code)
        if unit is None:
            raise GridNotFound(f"社区 {community_code} 不存在 (community not found)")
        if unit["level"] != "community":
            raise InvalidGridInput(f"{community_code} 不是社区，而是 {unit['level']} (not a community)")
        if unit["valid_to"] is not None:
            raise GridConflict(_retired_message(unit))
        boundary = unit["geom"]
        if boundary is None or boundary.is_empty:
            raise InvalidGridInput(f"社区 {community_code} 没有边界 (community has no boundary)")
        area = boundary.buffer(0.0005) if boundary.is_valid else boundary.envelope
        roads = store.roads_in(conn, area)
        rails = store.rails_in(conn, area)
        water = store.water_in(conn, area)
        buildings = store.buildings_in(conn, boundary if boundary.is_valid else boundary.buffer(0))
        # an empty boundary raises EmptyCommunity (an InvalidGridInput): nothing is written
        cb = community_grids(community_code, boundary, roads, rails, water, buildings, cfg)
        hh_by_id = {b.id: b.households for b in buildings}
        rows_g = [_row(a, f"{unit['name']}第{a.code[-3:]}网格") for a in cb.grids]
        rows_m = [_row(a, f"{unit['name']}第{a.code[-5:-2]}网格第{a.code[-2:]}微网格") for a in cb.microgrids]
        blocks = [
            {
                "seq": i + 1,
                "kind": b.kind,
                "hh": int(round(b.households)),
                "nb": len(b.building_ids),
                "area": b.geom.area,
                "g": to_lonlat(b.geom),
            }
            for i, b in enumerate(cb.blocks)
        ]
        grid_of = {b: g.code for g in cb.grids for b in g.building_ids}
        assignment = [
            {
                "building_id": b,
                "grid_code": grid_of[b],
                "microgrid_code": m.code,
                "households": int(hh_by_id.get(b, 0)),
            }
            for m in cb.microgrids
            for b in m.building_ids
        ]
        in_band = sum(1 for g in cb.grids if cfg.grid_min <= g.households <= cfg.grid_max)
        issues = [_issue(i) for i in cb.issues]
        rep = CommunityReport(
            community_code,
            None,
            len(cb.grids),
            len(cb.microgrids),
            int(sum(hh_by_id.values())),
            in_band,
            list(cb.flags),
            list(cb.messages),
            issues,
        )
        if write:
            rep.version = store.write_community_build(
                conn,
                community_code,
                rows_g,
                rows_m,
                blocks,
                assignment,
                properties={
                    "band": [cfg.grid_min, cfg.grid_max],
                    "micro_band": [cfg.micro_min, cfg.micro_max],
                    "household_source": store.household_source(conn),
                    "flags": cb.flags,
                },
            )
            rep.written = True
            rep.closed_retired = store.close_replaced_grids(conn, community_code)
            for c in rep.closed_retired:
                rep.messages.append(
                    f"已撤销社区 {c['community_code']} 的 {c['grids_closed']} 个网格、{c['microgrids_closed']} 个微网格"
                    f"已关闭 (grids of the retired community closed)"
                    + (
                        f"；其中 {c['buildings_left']} 栋建筑不在本社区，待其所属社区划分网格"
                        if c["buildings_left"]
                        else ""
                    )
                )
    return rep


def _retired_message(unit: dict) -> str:
    ret = (unit.get("properties") or {}).get("retired") or {}
    by = "、".join(ret.get("replaced_by") or []) or "—"
    return (
        f"社区 {unit['code']} 已撤销（{ret.get('reason', '')}），由 {by} 取代 "
        f"(community retired; build its replacement instead)"
    )


def communities_needing_build(engine: Engine) -> list[str]:
    """Codes of the active communities that need ``shequ grid build`` (see the store)."""
    with engine.connect() as conn:
        return store.communities_needing_build(conn)


def unit_issues(engine: Engine) -> list[dict]:
    """Overlaps between active townships / communities, units under a retired parent, and retired
    communities whose grids are still current (``needs_rebuild``)."""
    with engine.connect() as conn:
        return store.unit_issues(conn)


def build_all(
    engine: Engine, cfg: BuildConfig | None = None, progress=None, codes: list[str] | None = None,
    workers: int = 0, scheduler: str | None = None, client: Any = None,
) -> list[CommunityReport]:
    """Every active community (or ``codes``), one transaction each; a failure is reported, not raised.

    Communities are independent, so with ``workers`` (a Dask LocalCluster of that many processes),
    ``scheduler`` or ``client`` each is built in its own Dask task, on a worker with its own connection to
    ``DATABASE_URL`` of its environment (`geo.cluster.worker_engine`); the reports come back in ``codes``
    order, as one process gives them."""
    if codes is None:
        with engine.connect() as conn:
            codes = [u["code"] for u in store.admin_units(conn, "community")]
    if workers or scheduler or client is not None:
        from geo.cluster import run_partitions

        return run_partitions(build_on_worker, codes, cfg, workers=workers, scheduler=scheduler, client=client)
    return [_build_reported(engine, code, cfg) for code in (progress(codes) if progress else codes)]


def build_on_worker(code: str, cfg: BuildConfig | None = None) -> CommunityReport:
    """One community's grids on a Dask worker, through the worker's own engine."""
    from geo.cluster import worker_engine

    return _build_reported(worker_engine(), code, cfg)


def _build_reported(engine: Engine, code: str, cfg: BuildConfig | None) -> CommunityReport:
    """`build_community`, its failure turned into a report (one community's error must not stop the others)."""
    try:
        return build_community(engine, code, cfg)
    except GridError as exc:
        return CommunityReport(code, None, 0, 0, 0, 0, ["failed"], [exc.message])
    except shapely.errors.GEOSException as exc:  # one community's bad geometry must not stop the others
        return CommunityReport(code, None, 0, 0, 0, 0, ["failed"], [f"几何运算失败 geometry operation failed: {exc}"])


def _row(a, name: str) -> store.AreaRow:
    part = getattr(a, "part", None)
    if part is not None:
        name = f"{name}（{part['units'][0]}–{part['units'][1]} 户）"
    return store.AreaRow(
        a.code,
        name,
        a.level,
        a.parent_code,
        int(round(a.households)),
        len(a.building_ids),
        a.area_m2,
        a.compactness,
        a.contiguous,
        list(a.flags),
        to_lonlat(a.geom),
        {"building_units": part} if part is not None else None,
    )


def _issue(i) -> dict:
    return {
        "kind": i.kind,
        "codes": i.codes,
        "message": i.message,
        "area_m2": round(i.area_m2, 2),
        "geometry": mapping(to_wgs84(i.geom)) if i.geom is not None and not i.geom.is_empty else None,
        **i.extra,
    }


def validate_stored(engine: Engine, community_code: str) -> list[dict]:
    """Re-check the stored hierarchy of a community (what the database holds, not what was computed)."""
    with engine.connect() as conn:
        unit = store.admin_unit(conn, community_code)
        if unit is None or unit["level"] != "community":
            raise GridNotFound(f"社区 {community_code} 不存在 (community not found)")
        if unit["valid_to"] is not None:
            raise GridConflict(_retired_message(unit))
        grids = [g for g in store.list_grids(conn, "grid", None) if g["community_code"] == community_code]
        micro = [
            m for m in store.list_grids(conn, "microgrid", None) if m["community_code"] == community_code
        ]
        rows = store.grid_assignments(conn, community_code)
        bids = [b.id for b in store.buildings_in(conn, unit["geom"])]
    if not grids:
        raise GridNotFound(f"社区 {community_code} 尚未划分网格 (no grids built yet)")
    bg: dict[int, list[str]] = {}
    bm: dict[int, list[str]] = {}
    for b, g, m in rows:
        bg.setdefault(int(b), []).append(g)
        bm.setdefault(int(b), []).append(m)
    # validity is judged on the stored lon/lat geometry; the metric copies are only for measuring
    invalid = [
        Issue("invalid", [g["code"]], f"{g['code']} 几何无效 (invalid geometry)", to_metric(g["geom"]))
        for g in [*grids, *micro]
        if not g["geom"].is_valid
    ]

    def metric(g):
        return shapely.make_valid(to_metric(g))

    issues = validate_community(
        community_code,
        metric(unit["geom"]),
        {g["code"]: metric(g["geom"]) for g in grids},
        {m["code"]: (m["parent_code"], metric(m["geom"])) for m in micro},
        bids,
        bg,
        bm,
        check_validity=False,
    )
    return [_issue(i) for i in invalid + issues]


def h3_for_area(engine: Engine, area_code: str, res: int, mode: str, save: bool = False) -> list[dict]:
    """H3 cells of an admin unit or grid with counts per cell; ``save`` also writes the h3_cell layer."""
    h3grid.check(res, mode)
    with engine.begin() as conn:
        found = store.area_geometry(conn, area_code)
        if found is None:
            raise GridNotFound(f"区域 {area_code} 不存在 (no admin unit or grid with this code)")
        _level, geom = found
        h3grid.check_cell_budget(geom, res)
        layers = store.located_things(conn, geom)
        cells = h3grid.aggregate(geom, res, mode, layers)
        if save:
            store.write_h3_cells(conn, area_code, res, mode, cells)
    return cells


def assign_grid_staff(
    engine: Engine, grid_code: str, person_ref: str, role: str, valid_from: datetime | None = None
) -> dict:
    """Make ``person_ref`` the current ``role`` of a grid / micro-grid (one transaction). The previous
    holder's term ends at ``valid_from`` (its row is kept); the same person again changes nothing.
    Returns {"assignment": …, "closed": previous assignment or None, "changed": bool}."""
    from sqlalchemy.exc import IntegrityError

    valid_from = valid_from or datetime.now(UTC)
    with engine.begin() as conn:
        g = store.get_grid(conn, grid_code)
        if g is None:
            raise GridNotFound(
                f"没有编码为 {grid_code} 的现行网格或微网格 (no current grid/micro-grid {grid_code})"
            )
        cur = store.current_staff_for_update(conn, grid_code, role) if role in staff.ROLES else None
        staff.check_assignment(g["level"], person_ref, role, valid_from, cur["valid_from"] if cur else None)
        person_ref = person_ref.strip()
        if cur is not None and cur["person_ref"] == person_ref:
            return {"assignment": _staff_out(cur), "closed": None, "changed": False}
        if cur is not None:
            store.close_staff(conn, cur["id"], valid_from)
        try:
            new = store.insert_staff(conn, grid_code, person_ref, role, valid_from)
        except IntegrityError as exc:  # a concurrent assignment of the same role won the race
            raise GridConflict(
                f"{grid_code} 的{role}正被同时修改，请重试 (concurrent assignment, retry)"
            ) from exc
    closed = None
    if cur is not None:
        closed = _staff_out({**cur, "valid_to": valid_from, "current": False})
    return {"assignment": _staff_out(new), "closed": closed, "changed": True}


def grid_staff(engine: Engine, grid_code: str, current_only: bool = False) -> list[dict]:
    """Staff of a grid / micro-grid with their history (past terms keep their valid_to)."""
    with engine.connect() as conn:
        if store.get_grid(conn, grid_code) is None and not store.grid_history(conn, grid_code):
            raise GridNotFound(f"没有编码为 {grid_code} 的网格或微网格 (no grid/micro-grid {grid_code})")
        return [_staff_out(r) for r in store.staff_of(conn, grid_code, current_only)]


def _staff_out(r: dict) -> dict:
    return {
        **r,
        "valid_from": r["valid_from"].isoformat(),
        "valid_to": r["valid_to"].isoformat() if r["valid_to"] is not None else None,
    }
