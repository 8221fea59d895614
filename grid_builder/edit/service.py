"""Grid-edit workflow on one connection (the caller's transaction): preview, drafts, submit, approve /
reject, direct apply, rollback, history and diff.

Everything an approval writes happens in the caller's transaction after the community's advisory lock:
the base versions are compared with the current ones (409 `StaleBase` with what changed), the edit is
re-applied to the current grids, every invariant is checked on the whole community, and only then are
the affected grids' rows closed and their new versions (and their rebuilt micro-grids and the buildings'
assignments) written. Any error rolls the whole transaction back: nothing is half-applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from grid_builder.edit import store
from grid_builder.edit.errors import EditNotFound, EditRefused, EditStateConflict, StaleBase
from grid_builder.edit.invariants import check_layout, check_microgrids, issue_dict, refuse_if_broken
from grid_builder.edit.ops import EditBuilding, EditResult, Layout, apply_ops, parse_ops, place
from grid_builder.edit.outcome import (
    GRID_BAND,
    MICRO_BAND,
    GridOutcome,
    figures,
    membership,
    micro_flags,
    settle,
)
from grid_builder.edit.snap import Snapper, points_of, snap_ops, targets_from
from grid_builder.errors import GridConflict
from grid_builder.geom import as_multipolygon, n_parts, polsby_popper, safe_difference, to_lonlat, to_metric
from grid_builder.records import Area
from grid_builder.store import AreaRow

__all__ = ["approve", "diff", "edit_target", "check_given_base", "community_target", "ensure_current", "get_edit", "history", "list_edits", "load_layout", "plan", "rows_to_write", "settled",
           "preview", "reject", "rollback", "save_draft", "snap", "submit"]


@dataclass
class Plan:
    """An edit applied (in memory) to the community's current grids."""

    info: dict
    layout: Layout
    versions: dict[str, int]
    result: EditResult
    touched: list[str]
    exact: dict[str, BaseGeometry] | None = None  # lon/lat geometries written as they are (a rollback)
    parent: str | None = None  # a micro-grid edit: the grid whose micro-grids it changes


MICRO = "microgrid"


def micro_parent(ops_raw: Any) -> str | None:
    """The grid of a micro-grid edit (every operation ``"level": "microgrid"``, ``"in": "<grid code>"``),
    None for a grid edit; a mix, or micro-grid operations in different grids, is refused."""
    if not isinstance(ops_raw, list):
        return None
    levels = {op.get("level", "grid") if isinstance(op, dict) else "grid" for op in ops_raw}
    if MICRO not in levels:
        return None
    parents = {op.get("in") for op in ops_raw if isinstance(op, dict)}
    parent = next(iter(parents)) if len(parents) == 1 else None
    if levels != {MICRO} or not (isinstance(parent, str) and parent.isdigit() and len(parent) == 15):
        raise EditRefused("bad_operation", "微网格编辑的每个操作须为 level=microgrid 且 in 为同一网格编码 (a micro-grid "
                          "edit: every operation level 'microgrid', 'in' the same grid code)")
    return parent


def _edit_buildings(rows: list) -> list[EditBuilding]:
    lonlat = [g for _i, _h, g in rows]
    footprints = to_metric_many(lonlat)
    # the anchor: point-on-surface of the stored lon/lat footprint, as ST_PointOnSurface (building_anchor)
    anchors = to_metric_many(list(shapely.point_on_surface(np.array(lonlat, dtype=object)))) if rows else []
    return [EditBuilding(bid, a, fp, hh) for (bid, hh, _g), fp, a in zip(rows, footprints, anchors, strict=True)]


def load_micro_layout(conn: Any, community_code: str, grid_code: str) -> tuple[dict, Layout, dict[str, int]]:
    """One grid's micro-grids as a `Layout` (the grid in the community's place, its buildings, 2-digit
    codes), the community (info, with the micro-grids' rows) and the versions of the micro-grids and the grid."""
    info = store.community(conn, community_code)
    if info is None or info["level"] != "community":
        raise EditNotFound(f"社区 {community_code} 不存在 (community not found)")
    grid = next((g for g in store.current_grids(conn, community_code) if g["code"] == grid_code), None)
    if grid is None:
        raise EditRefused("unknown_grid", f"网格 {grid_code} 不在本社区 (grid not in the community)", [grid_code])
    micro = store.current_microgrids(conn, [grid_code])
    if not micro:
        raise EditNotFound(f"网格 {grid_code} 没有微网格 (the grid has no micro-grids)")
    buildings = _edit_buildings(store.assigned_buildings(conn, community_code, grid_code))
    layout = Layout(grid_code, to_metric(grid["geom"]), dict(zip([m["code"] for m in micro],
                    to_metric_many([m["geom"] for m in micro]), strict=True)), buildings,
                    store.next_micro_seq(conn, grid_code), seq_width=2)
    info["names"], info["micro"] = {}, {m["code"]: m for m in micro}
    return info, layout, {**store.current_microgrid_versions(conn, grid_code), grid_code: int(grid["version"])}


def _refuse_unit_strips(p: Plan, ops: list) -> None:
    """Unit-range strips of a large building are not split, merged or emptied of their building."""
    parts = {c: m["part"] for c, m in p.info["micro"].items() if m.get("part")}
    for x in p.result.lineage:
        if x["kind"] in ("split", "merge") and parts.keys() & set(x["old"]):
            bad = sorted(parts.keys() & set(x["old"]))
            raise EditRefused("microgrid_units", f"大型建筑的分单元微网格 {bad} 不能分割或合并 (unit-range micro-grids of "
                              "a large building cannot be split or merged)", bad)
    heavy = {int(pt["building_id"]) for pt in parts.values()}
    moved = {i for op in ops if op.kind == "move_buildings" for i in op.args["buildings"]}
    if heavy & moved:
        raise EditRefused("microgrid_units", f"建筑 {sorted(heavy & moved)} 已分单元划入多个微网格，不能整体移动 (a large "
                          "building split into unit ranges cannot be moved)", [])


def load_layout(conn: Any, community_code: str) -> tuple[dict, Layout, dict[str, int]]:
    """The community (info), its current grids and assigned buildings as a metric `Layout`, and the
    current version of each grid."""
    info = store.community(conn, community_code)
    if info is None or info["level"] != "community":
        raise EditNotFound(f"社区 {community_code} 不存在 (community not found)")
    if info["valid_to"] is not None:
        raise GridConflict(f"社区 {community_code} 已撤销，不能编辑其网格 (community retired)")
    grids = store.current_grids(conn, community_code)
    if not grids:
        raise EditNotFound(f"社区 {community_code} 尚未划分网格 (no grids built yet)")
    buildings = _edit_buildings(store.assigned_buildings(conn, community_code))
    layout = Layout(community_code, to_metric(info["geom"]), {x["code"]: to_metric(x["geom"]) for x in grids},
                    buildings, store.next_seq(conn, community_code))
    info["names"] = {x["code"]: x["name"] for x in grids}
    return info, layout, {x["code"]: x["version"] for x in grids}


def to_metric_many(geoms: list[BaseGeometry]) -> list[BaseGeometry]:
    """Many lon/lat geometries to metric in one projection call."""
    if not geoms:
        return []
    return list(to_metric(np.array(geoms, dtype=object)))


def _neighbours(grids: dict[str, BaseGeometry], codes: set[str], tol: float = 0.5) -> set[str]:
    out = set()
    for c in codes:
        g = grids.get(c)
        if g is None:
            continue
        out |= {o for o, h in grids.items() if o != c and h.distance(g) <= tol}
    return out


def _named(ops_raw: list) -> set[str]:
    names: set[str] = set()
    for op in ops_raw:
        for key in ("to", "grid"):
            if isinstance(op.get(key), str):
                names.add(op[key])
        if isinstance(op.get("grids"), list):
            names |= {c for c in op["grids"] if isinstance(c, str)}
    return names


def plan(conn: Any, community_code: str, ops_raw: Any) -> Plan:
    """Apply the operations to the current grids in memory (operation-level refusals raise)."""
    parent = micro_parent(ops_raw)
    ops = parse_ops(ops_raw)
    info, layout, versions = (load_micro_layout(conn, community_code, parent) if parent
                              else load_layout(conn, community_code))
    before = dict(layout.grids)
    result, _moved = apply_ops(layout, ops)
    layout.grids = before
    if parent:  # where a micro-grid edit lies, for the jurisdiction: its grid
        p = Plan(info, layout, versions, result, [parent], parent=parent)
        _refuse_unit_strips(p, ops)
        return p
    touched = ({*result.changed, *result.retired, *_named(ops_raw)} & set(before))
    return Plan(info, layout, versions, result, sorted(touched))


def snap(conn: Any, community_code: str, ops_raw: Any, tol: float) -> tuple[Any, list[dict]]:
    """The operations with dragged vertices and split-line points snapped within ``tol`` metres to roads,
    street-block edges and building footprints (`grid_builder.edit.snap`), and what snapped."""
    pts = points_of(ops_raw)
    if tol <= 0 or not pts:
        return snap_ops(ops_raw, Snapper([]), tol)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    near = store.snap_lines(conn, community_code, (min(xs), min(ys), max(xs), max(ys)), (tol + 2.0) * 1.5e-5)
    metric = {k: to_metric_many(v) for k, v in near.items()}
    return snap_ops(ops_raw, Snapper(targets_from(metric["road"], metric["block"], metric["building"])), tol)


def _issues(p: Plan) -> list:
    return check_layout(p.layout.community_code, p.layout.community, p.result.grids, p.layout.buildings,
                        focus=set(p.result.affected), level=MICRO if p.parent else "grid")


def edit_target(conn: Any, community_code: str, codes: list[str]) -> dict:
    """Where an edit lies, for the jurisdiction check: township, community and the grids it touches."""
    info = store.community(conn, community_code)
    if info is None:
        return {}
    return {"township": info["parent_code"], "community": community_code, "grid": sorted(codes)}


def community_target(conn: Any, community_code: str) -> dict:
    """Where a community lies with all its current grids (a grid manager holding one of them may edit
    there; the grids an edit touches are checked after planning)."""
    return edit_target(conn, community_code, [g["code"] for g in store.current_grids(conn, community_code)])


def preview(conn: Any, community_code: str, ops_raw: Any, band: tuple[float, float] = GRID_BAND) -> dict:
    """Live figures of an edit (nothing written): households per written grid against the band,
    compactness, buildings that move, staff assignments affected, and every broken invariant."""
    p = plan(conn, community_code, ops_raw)
    issues = _issues(p)
    if p.parent and band == GRID_BAND:
        band = MICRO_BAND
    figs = figures(p.layout, p.result, band)
    staff = store.current_staff(conn, [*p.result.changed, *p.result.retired])
    geoms = {c: place(p.result.grids[c]) for c in p.result.affected}
    return {"community_code": community_code, "valid": not issues, "issues": [issue_dict(i) for i in issues],
            **figs, "staff_affected": staff, "touched": p.touched, "geometries": geoms}


def _check_base(current: dict[str, int], base: dict[str, int]) -> None:
    changed = [{"code": c, "base_version": v, "current_version": current.get(c)}
               for c, v in sorted(base.items()) if current.get(c) != v]
    if changed:
        codes = "、".join(str(x["code"]) for x in changed)
        raise StaleBase(f"编辑所依据的网格版本已变化：{codes}，请在最新版本上重新编辑 (the grids this edit is based on "
                        f"have changed since: {codes})", {"changed": changed})


def _base_for(p: Plan, given: dict[str, int] | None) -> dict[str, int]:
    codes = set(p.touched) | _neighbours(p.layout.grids, set(p.touched))
    if p.parent:  # a micro-grid edit: the grid and every micro-grid of it
        codes = set(p.versions)
    base = {c: p.versions[c] for c in sorted(codes) if c in p.versions}
    if given:
        _check_base(p.versions, {c: int(v) for c, v in given.items()})
        base.update({c: int(v) for c, v in given.items()})
    return base


def get_edit(conn: Any, edit_id: int, for_update: bool = False) -> dict:
    """One edit (404 when unknown)."""
    e = store.get_edit(conn, edit_id, for_update)
    if e is None:
        raise EditNotFound(f"没有编号为 {edit_id} 的网格编辑 (no grid edit {edit_id})")
    return e


def list_edits(conn: Any, status: str | None = None, community_code: str | None = None, limit: int = 200
               ) -> list[dict]:
    """Edits, newest first."""
    return store.list_edits(conn, status, community_code, limit)


def save_draft(conn: Any, community_code: str, ops_raw: Any, reason: str, actor: str,
               base_versions: dict[str, int] | None = None, edit_id: int | None = None) -> dict:
    """Save a draft (new, or ``edit_id`` again): refused when it breaks an invariant (422) or when the
    versions it is based on are no longer current (409)."""
    store.lock_community(conn, community_code)
    old = None
    if edit_id is not None:
        old = get_edit(conn, edit_id, for_update=True)
        if old["status"] != "draft" or old["community_code"] != community_code:
            raise EditStateConflict(f"编辑 {edit_id} 不是本社区的草稿 (edit is not a draft of this community)")
        _check_base(store.current_versions(conn, list(old["base_versions"])), old["base_versions"])
    check_given_base(conn, base_versions)
    p = plan(conn, community_code, ops_raw)
    refuse_if_broken(_issues(p))
    base = _base_for(p, base_versions)
    if old is None:
        edit_id = store.insert_edit(conn, {"community_code": community_code, "kind": "edit", "status": "draft",
                                           "operations": ops_raw, "base_versions": base, "touched": p.touched,
                                           "reason": reason, "created_by": actor, "rollback_of": None})
    else:
        store.update_edit(conn, old["id"], operations=ops_raw, base_versions=base, touched=p.touched,
                          reason=reason)
    assert edit_id is not None
    return {**get_edit(conn, edit_id), "figures": figures(p.layout, p.result)}


def check_given_base(conn: Any, base_versions: dict[str, int] | None) -> None:
    """409 `StaleBase` when versions a client says it edited are no longer current."""
    if base_versions:
        given = {c: int(v) for c, v in base_versions.items()}
        _check_base(store.current_versions(conn, list(given)), given)


def ensure_current(conn: Any, edit_id: int) -> dict:
    """The edit, when the grid versions it is based on are still current (else 409 `StaleBase`)."""
    e = get_edit(conn, edit_id)
    _check_base(store.current_versions(conn, list(e["base_versions"])), e["base_versions"])
    return e


def submit(conn: Any, edit_id: int, actor: str) -> dict:
    """Draft → submitted (the base must still be current)."""
    e = get_edit(conn, edit_id, for_update=True)
    if e["status"] != "draft":
        raise EditStateConflict(f"只有草稿可以提交，编辑 {edit_id} 的状态为 {e['status']} (only a draft can be submitted)")
    _check_base(store.current_versions(conn, list(e["base_versions"])), e["base_versions"])
    store.update_edit(conn, edit_id, status="submitted", submitted_by=actor)
    return get_edit(conn, edit_id)


def reject(conn: Any, edit_id: int, actor: str, reason: str) -> dict:
    """Submitted → rejected, with a reason (required)."""
    if not reason.strip():
        raise EditRefused("reason_required", "驳回须说明理由 (a rejection needs a reason)")
    e = get_edit(conn, edit_id, for_update=True)
    if e["status"] != "submitted":
        raise EditStateConflict(f"只有已提交的编辑可以驳回 (only a submitted edit can be rejected; it is {e['status']})")
    store.update_edit(conn, edit_id, status="rejected", decided_by=actor, decision_reason=reason)
    return get_edit(conn, edit_id)


def approve(conn: Any, edit_id: int, actor: str, reason: str = "", direct: bool = False) -> dict:
    """Submitted (or, with ``direct``, a draft: admins) → approved: written as new versions of exactly the
    affected grids, after the base check and every invariant, in this transaction."""
    e = get_edit(conn, edit_id, for_update=True)
    allowed = ("submitted", "draft") if direct else ("submitted",)
    if e["status"] not in allowed or e["kind"] != "edit":
        raise EditStateConflict(f"编辑 {edit_id} 的状态为 {e['status']}，不能批准 (cannot approve an edit in state "
                                f"{e['status']})")
    store.lock_community(conn, e["community_code"])
    _check_base(store.current_versions(conn, list(e["base_versions"])), e["base_versions"])
    p = plan(conn, e["community_code"], e["operations"])
    result = (_write_micro if p.parent else _write)(conn, p, e, actor, reason or e["reason"])
    store.update_edit(conn, edit_id, status="approved", decided_by=actor, decision_reason=reason, result=result)
    return get_edit(conn, edit_id)


def _rows(p: Plan, outcomes: dict[str, GridOutcome], names: dict[str, str], band: tuple[float, float]
          ) -> list[AreaRow]:
    cname = p.info["name"]
    rows = []
    for code, o in outcomes.items():
        flags = ["edited"] + ([] if band[0] <= o.households <= band[1] else ["outside_band"])
        lonlat = (p.exact or {}).get(code) or to_lonlat(o.geom)
        rows.append(AreaRow(code, names.get(code) or f"{cname}第{code[-3:]}网格", "grid", p.info["code"],
                            int(round(o.households)), len(o.building_ids), o.geom.area, o.compactness,
                            n_parts(o.geom) <= 1, flags, lonlat))
        for m in o.microgrids:
            name = f"{cname}第{code[-3:]}网格第{m.code[-2:]}微网格"
            if m.part is not None:
                name += f"（{m.part['units'][0]}–{m.part['units'][1]} 户）"
            rows.append(AreaRow(m.code, name, "microgrid", code, int(round(m.households)), len(m.building_ids),
                                m.area_m2, m.compactness, m.contiguous, list(m.flags), to_lonlat(m.geom),
                                {"building_units": m.part} if m.part is not None else None))
    return rows


def settled(conn: Any, p: Plan) -> dict[str, GridOutcome]:
    """The changed grids of a grid edit with their micro-grids rebuilt (metric; nothing written), refused when
    the micro-grids would not cover their grid or would overlap."""
    rows = store.current_microgrids(conn, p.result.changed)
    old: dict[str, list[Area]] = {}
    for r, g in zip(rows, to_metric_many([r["geom"] for r in rows]), strict=True):
        old.setdefault(r["parent_code"], []).append(Area(r["code"], "microgrid", r["parent_code"], g,
                                                         float(r["households"]), [], list(r["flags"] or []),
                                                         r["part"]))
    outcomes = settle(p.layout, p.result, old_micro=old)
    refuse_if_broken(check_microgrids(p.result.grids, {c: {m.code: m.geom for m in o.microgrids}
                                                       for c, o in outcomes.items()}))
    return outcomes


def rows_to_write(p: Plan, outcomes: dict[str, GridOutcome], names: dict[str, str] | None = None,
                  band: tuple[float, float] = GRID_BAND) -> list[AreaRow]:
    """The grid and micro-grid rows a grid edit writes, in lon/lat (`to_lonlat`: valid after reprojection)."""
    return _rows(p, outcomes, names or {}, band)


def _write(conn: Any, p: Plan, e: dict, actor: str, reason: str, band: tuple[float, float] = GRID_BAND) -> dict:
    """Check every invariant, then close and write the affected grids, micro-grids and assignments."""
    refuse_if_broken(_issues(p))
    outcomes = settled(conn, p)
    names = {**store.names(conn, p.result.affected), **{c: n for c, n in p.info["names"].items()
                                                        if c in p.result.changed}}
    figs = figures(p.layout, p.result, band)
    staff = store.current_staff(conn, [*p.result.changed, *p.result.retired])
    closed = store.close_rows(conn, [*p.result.affected, *p.result.retired])
    props = {"edit": {"id": e["id"], "kind": e["kind"], "by": actor, "reason": reason}, "band": list(band)}
    written = store.insert_rows(conn, p.info["code"], _rows(p, outcomes, names, band), props)
    hh = {b.id: b.households for b in p.layout.buildings}
    store.set_assignments(conn, p.info["code"], [
        {"building_id": b, "grid_code": code, "microgrid_code": m.code, "households": int(round(hh[b]))}
        for code, o in outcomes.items() for m in o.microgrids for b in m.building_ids])
    pairs = [(x["kind"], o, n) for x in p.result.lineage if x["kind"] in ("split", "merge", "rollback")
             for o in x["old"] for n in x["new"]]
    store.insert_code_map(conn, e["id"], pairs)
    return {**figs, "written": {c: v for c, v in written.items() if c in outcomes}, "closed": closed,
            "before_versions": {c: p.versions[c] for c in [*p.result.changed, *p.result.retired]},
            "staff_affected": staff}


def _write_micro(conn: Any, p: Plan, e: dict, actor: str, reason: str) -> dict:
    """A micro-grid edit: every invariant inside the grid, then the affected micro-grids' rows closed and
    written anew (the grid itself keeps its row and version), assignments and the code map updated."""
    refuse_if_broken(_issues(p))
    assert p.parent is not None
    after = membership(p.result.grids, p.layout)
    by_id = {b.id: b for b in p.layout.buildings}
    cname, rows, assign = p.info["name"], [], []
    for code in p.result.affected:
        ids = sorted(i for i, g in after.items() if g == code)
        part = (p.info["micro"].get(code) or {}).get("part")
        geom = p.result.grids[code]
        if part:
            hh = float(part["unit_households"]) + sum(by_id[i].households for i in ids if i != part["building_id"])
            flags = list(p.info["micro"][code]["flags"] or [])
        else:
            hh = float(sum(by_id[i].households for i in ids))
            flags = micro_flags(len(ids), hh, MICRO_BAND)
        rows.append(AreaRow(code, f"{cname}第{p.parent[-3:]}网格第{code[-2:]}微网格", MICRO, p.parent,
                            int(round(hh)), len(ids), geom.area, polsby_popper(geom), n_parts(geom) <= 1, flags,
                            (p.exact or {}).get(code) or to_lonlat(geom), {"building_units": part} if part else None))
        assign += [{"building_id": i, "grid_code": p.parent, "microgrid_code": code,
                    "households": int(round(by_id[i].households))} for i in ids]
    figs = figures(p.layout, p.result, MICRO_BAND)
    staff = store.current_staff(conn, [*p.result.changed, *p.result.retired])
    closed = store.close_rows(conn, [*p.result.affected, *p.result.retired])
    props = {"edit": {"id": e["id"], "kind": e["kind"], "by": actor, "reason": reason}, "band": list(MICRO_BAND)}
    written = store.insert_rows(conn, p.info["code"], rows, props)
    store.set_assignments(conn, p.info["code"], assign)
    store.insert_code_map(conn, e["id"], [(x["kind"], o, n) for x in p.result.lineage
                                          if x["kind"] in ("split", "merge", "rollback")
                                          for o in x["old"] for n in x["new"]])
    return {**figs, "level": MICRO, "grid": p.parent, "written": written, "closed": closed,
            "before_versions": {c: p.versions[c] for c in [*p.result.changed, *p.result.retired]},
            "staff_affected": staff}


def rollback(conn: Any, edit_id: int, actor: str, reason: str) -> dict:
    """Undo an approved edit as a new edit of kind ``rollback`` (new versions, nothing deleted): grids (or,
    for a micro-grid edit, micro-grids) it changed get their previous geometry back, codes it created end,
    codes it retired come back; every invariant is checked before anything is written. 409 when any of
    them changed since (for a micro-grid edit also when its grid's shape changed)."""
    e = get_edit(conn, edit_id, for_update=True)
    if e["status"] != "approved" or e["kind"] != "edit" or e["rolled_back_by"] is not None:
        raise EditStateConflict(f"编辑 {edit_id} 不能回退（未批准或已回退） (only an approved edit not yet rolled back)")
    if any(isinstance(op, dict) and op.get("level") == "community" for op in e["operations"]):
        raise EditStateConflict(f"社区/街道边界编辑 {edit_id} 由 grid_builder.edit.boundary.rollback_boundary 回退 (a "
                                "boundary edit is rolled back by rollback_boundary)")
    parent = micro_parent(e["operations"])
    store.lock_community(conn, e["community_code"])
    res = e["result"]
    written = {c: int(v) for c, v in res["written"].items()}
    current = store.current_versions(conn, [*written, *res["retired"]])
    same = store.unchanged_since(conn, written)
    changed = [{"code": c, "base_version": v, "current_version": current.get(c)} for c, v in sorted(written.items())
               if c not in same] + [{"code": c, "base_version": None, "current_version": current[c]}
                                    for c in res["retired"] if c in current]
    if parent:  # a micro-grid edit: its grid must still have the shape the micro-grids were edited in
        base_gv = int(e["base_versions"][parent])
        if parent not in store.unchanged_since(conn, {parent: base_gv}):
            changed.append({"code": parent, "base_version": base_gv,
                            "current_version": store.current_versions(conn, [parent]).get(parent)})
    if changed:
        raise StaleBase(f"编辑 {edit_id} 之后这些网格又有变化，不能回退：{'、'.join(str(x['code']) for x in changed)} "
                        "(the grids changed since; roll back the later edits first)", {"changed": changed})
    written = {c: same[c] for c in written}
    info, layout, versions = (load_micro_layout(conn, e["community_code"], parent) if parent
                              else load_layout(conn, e["community_code"]))
    grids = dict(layout.grids)
    for c in res["created"]:
        grids.pop(c, None)
    back: dict[str, int] = res["before_versions"]
    exact = {}
    for c, v in back.items():
        g = store.version_geom(conn, c, int(v))
        if g is None:
            raise EditNotFound(f"找不到 {c} 的第 {v} 版 (version missing)")
        exact[c] = g
        grids[c] = as_multipolygon(to_metric(g))
    result = EditResult(grids, changed=sorted(c for c in back if c in layout.grids),
                        created=sorted(c for c in back if c not in layout.grids), retired=sorted(res["created"]))
    result.lineage = [{"kind": "rollback", "old": sorted(res["created"]), "new": sorted(result.created)}] \
        if res["created"] and result.created else []
    p = Plan(info, layout, versions, result, [parent] if parent else sorted({*back, *res["created"]}), exact,
             parent=parent)
    rid = store.insert_edit(conn, {"community_code": e["community_code"], "kind": "rollback", "status": "approved",
                                   "operations": [], "base_versions": {c: v for c, v in written.items()},
                                   "touched": p.touched, "reason": reason, "created_by": actor,
                                   "rollback_of": edit_id})
    r = get_edit(conn, rid)
    out = (_write_micro if parent else _write)(conn, p, r, actor, reason)
    store.update_edit(conn, rid, decided_by=actor, decision_reason=reason, result=out)
    store.update_edit(conn, edit_id, rolled_back_by=rid)
    return get_edit(conn, rid)


def history(conn: Any, code: str) -> dict:
    """Timeline of a grid code: every version (when, who, why) and the code-map entries naming it."""
    vs = store.versions(conn, code)
    if not vs:
        raise EditNotFound(f"没有编码为 {code} 的网格 (no grid {code})")
    return {"code": code, "versions": vs, "code_map": store.code_map(conn, code)}


def diff(conn: Any, code: str, v1: int, v2: int) -> dict:
    """What changed between two versions of a grid: area gained / lost (GeoJSON), buildings gained / lost,
    households and area before / after."""
    g1, g2 = store.version_geom(conn, code, v1), store.version_geom(conn, code, v2)
    if g1 is None or g2 is None:
        raise EditNotFound(f"网格 {code} 没有第 {v1 if g1 is None else v2} 版 (no such version)")
    m1, m2 = to_metric(g1), to_metric(g2)
    gained, lost = safe_difference(m2, m1), safe_difference(m1, m2)
    b1, b2 = set(store.buildings_in_version(conn, code, v1)), set(store.buildings_in_version(conn, code, v2))
    vs = {v["version"]: v for v in store.versions(conn, code)}
    return {"code": code, "from": v1, "to": v2,
            "area_m2": [round(m1.area, 1), round(m2.area, 1)],
            "households": [vs[v1]["households"], vs[v2]["households"]],
            "area_gained_m2": round(gained.area, 1), "area_lost_m2": round(lost.area, 1),
            "gained": place(gained), "lost": place(lost),
            "buildings_gained": sorted(b2 - b1), "buildings_lost": sorted(b1 - b2)}
