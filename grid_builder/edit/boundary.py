"""Community / township boundary edits by admins (社区、街道边界编辑): a shared boundary vertex moves in every
community and township that holds it and, in the same change, in every grid of those communities that
holds it; the micro-grids of the changed grids are fitted again. Applied directly by an admin, in the
caller's transaction, after every invariant:

- the boundaries: each changed unit valid and in no more pieces than before; the communities (and the
  townships) near the edit still cover what they covered (within 0.5 m: a vertex on the outer edge of the
  area cannot move) and overlap no more than 1 m²; each changed community inside its township;
- the grids: each changed community's grids cover it within 0.5 m, no overlap, each grid one piece, every
  building in exactly one grid, the micro-grids nested;
- no building changes community (``building_changes_community``): its standard addresses carry the
  community code, so that move goes through the address registry, not a boundary drag.

Operations: ``{"op": "move_vertex", "level": "community", "from": [lon, lat], "to": [lon, lat]}`` (up to 50).
Grids get new versions (codes kept); the units' boundaries are updated in place (``admin_unit`` codes are
unique) with the edit appended to ``properties.boundary_edits``, and the previous boundaries kept in the
edit's result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shapely.geometry import MultiPoint, mapping
from shapely.geometry.base import BaseGeometry

from grid_builder.edit import store
from grid_builder.edit.errors import EditNotFound, EditRefused, EditStateConflict, StaleBase
from grid_builder.edit.invariants import (
    COVER_TOL_M,
    OVERLAP_M2,
    check_layout,
    check_microgrids,
    issue_dict,
    refuse_if_broken,
)
from grid_builder.edit.ops import SNAP_M, EditBuilding, EditResult, Layout, move_vertex, parse_ops, place
from grid_builder.edit.outcome import GRID_BAND, figures, membership, settle
from grid_builder.geom import as_multipolygon, n_parts, safe_difference, safe_union, to_wgs84
from grid_builder.records import Area
from grid_builder.validate import Issue, check_cover, check_overlaps

LEVEL = "community"
NEAR_DEG = 0.003  # units within ~300 m of the moved vertices are checked (cover, overlap)

__all__ = ["LEVEL", "BoundaryPlan", "apply_boundary", "boundary_issues", "is_boundary_edit", "plan_boundary",
           "preview_boundary", "rollback_boundary"]


def is_boundary_edit(ops_raw: Any) -> bool:
    """Whether the operations are a community / township boundary edit (every one ``"level": "community"``,
    a ``move_vertex``); a mix with other levels or other operations is refused."""
    if not isinstance(ops_raw, list):
        return False
    if any(isinstance(op, dict) and not isinstance(op.get("level", "grid"), str) for op in ops_raw):
        raise EditRefused("bad_operation", "操作的 level 须为字符串 grid 或 community (an operation's 'level' must "
                          "be the string 'grid' or 'community')")
    levels = {op.get("level", "grid") if isinstance(op, dict) else "grid" for op in ops_raw}
    if LEVEL not in levels:
        return False
    if levels != {LEVEL} or any(op.get("op") != "move_vertex" for op in ops_raw):
        raise EditRefused("bad_operation", "社区/街道边界编辑的每个操作须为 level=community 的 move_vertex (a boundary "
                          "edit: every operation a move_vertex with level 'community')")
    return True


@dataclass
class BoundaryPlan:
    """A boundary edit applied in memory: the units near it before / after, the grids of the changed
    communities before (``layout``) and after (``result``)."""

    units: dict[str, dict]  # code → admin_unit row (lon/lat boundary before)
    before: dict[str, BaseGeometry]  # metric
    after: dict[str, BaseGeometry]  # metric
    changed_units: list[str]
    communities: list[str]  # communities whose boundary moves
    layout: Layout
    result: EditResult
    versions: dict[str, int]  # current version of every grid of those communities
    home: dict[int, str]  # building id → its community now
    swept: list[tuple[int, BaseGeometry]]  # (id, metric anchor) of the buildings in land that changes unit


def _metric_many(geoms: list[BaseGeometry]) -> list[BaseGeometry]:
    from grid_builder.edit.service import to_metric_many

    return to_metric_many(geoms)


def _units_around(conn: Any, ops: list) -> tuple[dict[str, dict], dict[str, BaseGeometry]]:
    """The townships and communities near the operations' points: rows and metric boundaries."""
    pts = [to_wgs84(op.args[k]) for op in ops for k in ("from", "to")]
    xs, ys = [p.x for p in pts], [p.y for p in pts]
    rows = store.units_near(conn, (min(xs), min(ys), max(xs), max(ys)), NEAR_DEG)
    units = {r["code"]: r for r in rows}
    return units, dict(zip(units, _metric_many([r["geom"] for r in rows]), strict=True))


def plan_boundary(conn: Any, ops_raw: Any) -> BoundaryPlan:
    """Move the vertices in the units and the grids (in memory); operation-level refusals raise."""
    ops = parse_ops(ops_raw)
    units, before = _units_around(conn, ops)
    after = dict(before)
    changed: set[str] = set()
    for op in ops:
        p, q = op.args["from"], op.args["to"]
        near = {c: g for c, g in after.items() if g.distance(p) <= SNAP_M}
        if not any(units[c]["level"] == "community" for c in near):
            raise EditRefused("vertex_not_found", f"{SNAP_M:g} 米内没有社区边界顶点或边 (no community boundary within "
                              f"{SNAP_M:g} m of 'from')", [], place(p.buffer(SNAP_M)))
        changed |= set(move_vertex(near, p, q))
        after.update(near)

    def follow(grids: dict[str, BaseGeometry]) -> tuple[dict[str, BaseGeometry], list[str]]:
        moved, grid_changed = dict(grids), set()
        for op in ops:
            p, q = op.args["from"], op.args["to"]
            near = {c: g for c, g in moved.items() if g.distance(p) <= SNAP_M}
            if near:
                grid_changed |= set(move_vertex(near, p, q))
                moved.update(near)
        return moved, sorted(grid_changed)

    return _plan(conn, units, before, after, sorted(changed), follow)


def _plan(conn: Any, units: dict[str, dict], before: dict[str, BaseGeometry], after: dict[str, BaseGeometry],
          changed: list[str], follow: Any) -> BoundaryPlan:
    """The plan once the units' new boundaries are known: the changed communities' grids and buildings,
    the grids after (``follow(grids) -> (grids after, changed codes)``), the buildings in swept land."""
    from grid_builder.edit.service import _edit_buildings

    communities = sorted(c for c in changed if units[c]["level"] == "community")
    grids: dict[str, BaseGeometry] = {}
    versions: dict[str, int] = {}
    buildings: list[EditBuilding] = []
    home: dict[int, str] = {}
    for c in communities:
        rows_g = store.current_grids(conn, c)
        grids.update(zip([g["code"] for g in rows_g], _metric_many([g["geom"] for g in rows_g]), strict=True))
        versions.update({g["code"]: int(g["version"]) for g in rows_g})
        bs = _edit_buildings(store.assigned_buildings(conn, c))
        buildings += bs
        home.update({b.id: c for b in bs})
    layout = Layout(communities[0], safe_union([before[c] for c in communities]), grids, buildings)
    moved, grid_changed = follow(grids)
    region = safe_union([safe_difference(before[c], after[c]) for c in communities]
                        + [safe_difference(after[c], before[c]) for c in communities])
    found = store.building_anchors_in(conn, to_wgs84(region)) if not region.is_empty else []
    swept = list(zip([i for i, _a in found], _metric_many([a for _i, a in found]), strict=True))
    return BoundaryPlan(units, before, after, changed, communities, layout,
                        EditResult(moved, changed=grid_changed), versions, home, swept)


def _changed_only(issues: list[Issue], codes: set[str]) -> list[Issue]:
    return [i for i in issues if codes & set(i.codes)]


def boundary_issues(bp: BoundaryPlan) -> list[Issue]:
    """Every broken invariant of a planned boundary edit (see the module docstring)."""
    issues: list[Issue] = []
    changed = set(bp.changed_units)
    for c in bp.changed_units:
        g = bp.after[c]
        if not g.is_valid:
            issues.append(Issue("invalid", [c], f"{c} 的边界几何无效 (invalid boundary)", g, g.area))
        elif n_parts(g) > n_parts(bp.before[c]):
            issues.append(Issue("not_connected", [c], f"{c} 的边界分成了多块 (the boundary falls apart)", g, g.area))
    if issues:
        return issues
    for level, word in (("community", "社区"), ("township", "街道")):
        codes = [c for c in bp.after if bp.units[c]["level"] == level]
        if not codes or not changed & set(codes):
            continue
        union_before = safe_union([bp.before[c] for c in codes])
        sub = {c: bp.after[c] for c in codes}
        for i in check_cover(f"{word}边界", union_before, sub, COVER_TOL_M, level=word):
            i.codes = sorted(changed & set(codes))
            issues.append(i)
        issues += _changed_only(check_overlaps(sub, OVERLAP_M2), changed)
    for c in bp.communities:
        parent = bp.units[c]["parent_code"]
        if parent in bp.after:
            for i in check_cover(parent, bp.after[parent], {c: bp.after[c]}, COVER_TOL_M, level="社区"):
                if i.kind == "overhang":
                    issues.append(Issue("community_not_nested", [c, parent], f"社区 {c} 超出街道 {parent} (community outside "
                                        f"its township)", i.geom, i.area_m2))
        mine = {g: geom for g, geom in bp.result.grids.items() if g[:12] == c}
        if mine:
            issues += check_cover(c, bp.after[c], mine, COVER_TOL_M)
    gridded = sorted({g[:12] for g in bp.result.grids})  # a community without grids yet has none to follow
    if gridded:
        union_after = safe_union([bp.after[c] for c in gridded])
        issues += check_layout(bp.layout.community_code, union_after, bp.result.grids, bp.layout.buildings,
                               focus=set(bp.result.changed))
    return issues + _community_changes(bp)


def _community_changes(bp: BoundaryPlan) -> list[Issue]:
    """Buildings whose community would change (none may: see the module docstring)."""
    mem = membership(bp.result.grids, bp.layout)
    away = {b.id: (bp.home[b.id], b.anchor) for b in bp.layout.buildings
            if mem.get(b.id) and str(mem[b.id])[:12] != bp.home[b.id]}
    comms = [c for c in bp.after if bp.units[c]["level"] == "community"]
    for bid, anchor in bp.swept:  # buildings in land that changes community (also of communities without grids)
        was = next((c for c in comms if bp.before[c].covers(anchor)), None)
        now = next((c for c in comms if bp.after[c].covers(anchor)), None)
        if was != now:
            away.setdefault(bid, (was or "", anchor))
    if not away:
        return []
    ids = sorted(away)
    return [Issue("building_changes_community", sorted({c for c, _a in away.values() if c}),
                  f"建筑 {ids[:10]} 将改属另一社区；其标准地址带社区代码，请通过地址库调整 (buildings would change "
                  "community: their standard addresses carry the community code)",
                  MultiPoint([a for _c, a in away.values()]), 0.0, {"buildings": ids})]


def _units_out(bp: BoundaryPlan) -> list[dict]:
    return [{"code": c, "level": bp.units[c]["level"], "name": bp.units[c]["name"],
             "area_m2": [round(bp.before[c].area, 1), round(bp.after[c].area, 1)]} for c in bp.changed_units]


def preview_boundary(conn: Any, ops_raw: Any, band: tuple[float, float] = GRID_BAND) -> dict:
    """Figures of a boundary edit (nothing written): the units and grids that change, households per
    changed grid against the band, and every broken rule."""
    bp = plan_boundary(conn, ops_raw)
    issues = boundary_issues(bp)
    return {"level": LEVEL, "communities": bp.communities, "valid": not issues,
            "issues": [issue_dict(i) for i in issues], "units": _units_out(bp),
            **figures(bp.layout, bp.result, band), "touched": bp.result.changed,
            "geometries": {c: place(bp.result.grids[c]) for c in bp.result.changed},
            "unit_geometries": {c: place(bp.after[c]) for c in bp.changed_units}}


def apply_boundary(conn: Any, community_code: str, ops_raw: Any, reason: str, actor: str) -> dict:
    """Apply a boundary edit at once (admins): the communities are locked, the edit planned again on the
    current rows, every invariant checked, then the grids' new versions, their micro-grids, the buildings'
    assignments and the units' boundaries written — all in the caller's transaction."""
    from grid_builder.edit.service import get_edit

    if not reason.strip():
        raise EditRefused("reason_required", "边界编辑须说明理由 (a boundary edit needs a reason)")
    for c in plan_boundary(conn, ops_raw).communities:
        store.lock_community(conn, c)
    bp = plan_boundary(conn, ops_raw)
    if community_code not in bp.communities:
        raise EditRefused("bad_operation", f"社区 {community_code} 的边界不在此次编辑中 (the edit does not move community "
                          f"{community_code}'s boundary)", [community_code])
    refuse_if_broken(boundary_issues(bp))
    eid = store.insert_edit(conn, {"community_code": community_code, "kind": "edit", "status": "approved",
                                   "operations": ops_raw, "base_versions": {g: bp.versions[g] for g in bp.result.changed},
                                   "touched": bp.result.changed, "reason": reason, "created_by": actor,
                                   "rollback_of": None})
    result = _write(conn, bp, eid, "boundary", actor, reason)
    store.update_edit(conn, eid, decided_by=actor, decision_reason=reason, result=result)
    return get_edit(conn, eid)


def _write(conn: Any, bp: BoundaryPlan, eid: int, kind: str, actor: str, reason: str,
           exact: dict[str, BaseGeometry] | None = None, units_exact: dict[str, BaseGeometry] | None = None) -> dict:
    """Fit the micro-grids, check them, then write the grids' new versions, their micro-grids, the
    buildings' assignments and the units' boundaries; the edit's result. ``exact``: lon/lat grid geometries
    written as they are (a rollback), ``units_exact`` the same for units."""
    from grid_builder.edit.service import Plan, _rows

    rows = store.current_microgrids(conn, bp.result.changed)
    old: dict[str, list[Area]] = {}
    for r, g in zip(rows, _metric_many([r["geom"] for r in rows]), strict=True):
        old.setdefault(r["parent_code"], []).append(Area(r["code"], "microgrid", r["parent_code"], g,
                                                         float(r["households"]), [], list(r["flags"] or []),
                                                         r["part"]))
    outcomes = settle(bp.layout, bp.result, old_micro=old)
    refuse_if_broken(check_microgrids(bp.result.grids, {c: {m.code: m.geom for m in o.microgrids}
                                                        for c, o in outcomes.items()}))
    props = {"edit": {"id": eid, "kind": kind, "by": actor, "reason": reason}, "band": list(GRID_BAND)}
    names = store.names(conn, bp.result.changed)
    closed = store.close_rows(conn, bp.result.changed)
    written: dict[str, int] = {}
    hh = {b.id: b.households for b in bp.layout.buildings}
    for c in bp.communities:
        outs = {g: o for g, o in outcomes.items() if g[:12] == c}
        if not outs:
            continue
        p = Plan({"code": c, "name": bp.units[c]["name"]}, bp.layout, bp.versions, bp.result, [], exact)
        written |= store.insert_rows(conn, c, _rows(p, outs, names, GRID_BAND), props)
        store.set_assignments(conn, c, [{"building_id": b, "grid_code": g, "microgrid_code": m.code,
                                         "households": int(round(hh[b]))}
                                        for g, o in outs.items() for m in o.microgrids for b in m.building_ids])
    store.set_unit_boundaries(conn, {c: (units_exact or {}).get(c) or to_wgs84(bp.after[c]) for c in bp.changed_units},
                              {"edit": eid, "kind": kind, "by": actor, "reason": reason,
                               "at": datetime.now(UTC).isoformat()})
    return {**figures(bp.layout, bp.result, GRID_BAND), "level": LEVEL, "communities": bp.communities,
            "units": _units_out(bp), "units_before": {c: mapping(bp.units[c]["geom"]) for c in bp.changed_units},
            "written": {c: v for c, v in written.items() if c in outcomes}, "closed": closed,
            "before_versions": {g: bp.versions[g] for g in bp.result.changed}}


def rollback_boundary(conn: Any, edit_id: int, actor: str, reason: str) -> dict:
    """Undo an approved boundary edit as a new edit of kind ``rollback``: the units get their previous
    boundaries back and the grids it changed their previous versions' geometry (new versions), micro-grids
    fitted, every invariant checked first. 409 when a later edit changed those grids or boundaries."""
    from shapely.geometry import shape

    from grid_builder.edit.service import get_edit

    e = get_edit(conn, edit_id, for_update=True)
    if e["status"] != "approved" or e["kind"] != "edit" or e["rolled_back_by"] is not None:
        raise EditStateConflict(f"编辑 {edit_id} 不能回退（未批准或已回退） (only an approved edit not yet rolled back)")
    res = e["result"]
    for c in res["communities"]:
        store.lock_community(conn, c)
    written = {c: int(v) for c, v in res["written"].items()}
    same = store.unchanged_since(conn, written)
    last = store.last_boundary_edits(conn, list(res["units_before"]))
    changed = [{"code": c, "base_version": v, "current_version": store.current_versions(conn, [c]).get(c)}
               for c, v in sorted(written.items()) if c not in same]
    changed += [{"code": c, "base_version": None, "current_version": None} for c in sorted(res["units_before"])
                if last.get(c) != edit_id]
    if changed:
        raise StaleBase(f"边界编辑 {edit_id} 之后这些网格或边界又有变化，不能回退：{'、'.join(x['code'] for x in changed)} "
                        "(changed since; roll back the later edits first)", {"changed": changed})
    units, now = _units_around(conn, parse_ops(e["operations"]))
    units_exact = {c: shape(g) for c, g in res["units_before"].items()}
    after = {**now, **dict(zip(units_exact, _metric_many(list(units_exact.values())), strict=True))}
    exact: dict[str, BaseGeometry] = {}
    for g, v in res["before_versions"].items():
        geom = store.version_geom(conn, g, int(v))
        if geom is None:
            raise EditNotFound(f"找不到 {g} 的第 {v} 版 (version missing)")
        exact[g] = geom
    back = dict(zip(exact, _metric_many(list(exact.values())), strict=True))

    def follow(grids: dict[str, BaseGeometry]) -> tuple[dict[str, BaseGeometry], list[str]]:
        return {**grids, **{g: as_multipolygon(m) for g, m in back.items()}}, sorted(back)

    bp = _plan(conn, units, now, after, sorted(units_exact), follow)
    refuse_if_broken(boundary_issues(bp))
    rid = store.insert_edit(conn, {"community_code": e["community_code"], "kind": "rollback", "status": "approved",
                                   "operations": [], "base_versions": {c: same[c] for c in written},
                                   "touched": sorted(back), "reason": reason, "created_by": actor,
                                   "rollback_of": edit_id})
    out = _write(conn, bp, rid, "rollback", actor, reason, exact, units_exact)
    store.update_edit(conn, rid, decided_by=actor, decision_reason=reason, result=out)
    store.update_edit(conn, edit_id, rolled_back_by=rid)
    return get_edit(conn, rid)

