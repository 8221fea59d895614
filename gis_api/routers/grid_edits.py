"""Grid edits (网格编辑): preview with live figures, drafts, submit, approve / reject, direct apply,
rollback, and per-grid history and diff. Thin: the work is `grid_builder.edit.service` (see
docs/grid-editing.md).

Jurisdiction: the policy admits the role; the edit's place (township, community, the grids it touches)
is then checked with `roles.require` — a grid manager must hold one of the grids an edit touches,
community / street staff the community / township.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from gis_api.auth import roles as r
from gis_api.auth.audited import audited, note_records
from gis_api.auth.deps import requires
from gis_api.deps import db_conn
from gis_api.params import RowIdPath, row_id_query

router = APIRouter(tags=["grid edits 网格编辑"])
EDIT, REVIEW, APPLY = "grids:edit", "grids:edit_review", "grids:edit_apply"
_CODE = r"^\d{12}$"


class EditIn(BaseModel):
    """A draft: the community, its operations (lon/lat) and why; optionally the grid versions it is based on."""

    community_code: str = Field(..., pattern=_CODE, description="社区编码（12 位）")
    operations: list[dict[str, Any]] = Field(..., min_length=1, max_length=50,
                                             description="move_vertex | move_buildings | split | merge")
    reason: str = Field("", max_length=2000, description="编辑理由")
    base_versions: dict[str, int] | None = Field(None, description="所依据的网格版本 {编码: 版本}")
    snap_m: float | None = Field(None, ge=0, le=10, description="吸附容差（米）：拖动的顶点与分割线吸附到道路、"
                                 "街区边界、建筑轮廓；缺省为服务器设置 SHEQU_EDIT_SNAP_M，0 为不吸附")


class PreviewIn(BaseModel):
    """Operations to preview (nothing is written)."""

    community_code: str = Field(..., pattern=_CODE)
    operations: list[dict[str, Any]] = Field(..., min_length=1, max_length=50)
    band: tuple[int, int] = Field((300, 500), description="每网格户数区间")
    snap_m: float | None = Field(None, ge=0, le=10, description="吸附容差（米），缺省为服务器设置，0 为不吸附")


class DecisionIn(BaseModel):
    """Why a reviewer approves, rejects or rolls back."""

    reason: str = Field("", max_length=2000, description="理由（驳回、回退必填）")


def _edit_read(conn: Connection, params: dict[str, str]) -> Any:
    from grid_builder.edit import store

    e = store.get_edit(conn, int(params["edit_id"])) if (params.get("edit_id", "").isascii() and params.get("edit_id", "").isdigit()) else None
    return None if e is None else {k: e[k] for k in ("id", "status", "community_code", "touched", "reason")}


def _check(conn: Connection, principal: r.Principal, action: str, community: str, codes: list[str]) -> None:
    from grid_builder.edit.service import edit_target

    r.require(principal, action, edit_target(conn, community, codes))


def _check_community(conn: Connection, principal: r.Principal, action: str, community: str) -> None:
    """Before any work: the caller may act in this community at all (403 names no record)."""
    from grid_builder.edit.service import community_target

    r.require(principal, action, community_target(conn, community))


def _edit_checked(conn: Connection, principal: r.Principal, action: str, edit_id: int) -> dict:
    from grid_builder.edit import service

    e = service.get_edit(conn, edit_id)
    _check(conn, principal, action, e["community_code"], list(e["touched"]))
    return e


def _snapped(conn: Connection, community: str, ops: list[dict[str, Any]], snap_m: float | None
             ) -> tuple[list[dict[str, Any]], list[dict]]:
    """The operations snapped within the request's tolerance (else the server's setting)."""
    from gis_api.settings import get_settings
    from grid_builder.edit import service

    tol = get_settings().edit_snap_m if snap_m is None else snap_m
    return service.snap(conn, community, ops, tol)


def _boundary(principal: r.Principal, ops: list[dict[str, Any]]) -> bool:
    """A community / township boundary edit (``"level": "community"``): admins only (403 for others)."""
    from grid_builder.edit.boundary import is_boundary_edit

    if not is_boundary_edit(ops):
        return False
    r.require(principal, APPLY)
    return True


def _no_boundary_draft(principal: r.Principal, ops: list[dict[str, Any]]) -> None:
    from grid_builder.edit.errors import EditRefused

    if _boundary(principal, ops):
        raise EditRefused("bad_operation", "社区/街道边界编辑由管理员直接生效，不作草稿 (POST /grid-edits/apply; a "
                          "boundary edit is applied directly by an admin, not drafted)")


def _touched(conn: Connection, community: str, ops: list[dict[str, Any]]) -> list[str]:
    from grid_builder.edit.service import plan

    return plan(conn, community, ops).touched


@router.post("/grid-edits/preview", summary="预览网格编辑：受影响网格户数、紧凑度、移动的建筑、受影响的网格人员")
def preview(body: PreviewIn, conn: Connection = Depends(db_conn, scope="function"),
            principal: r.Principal = Depends(requires(EDIT))):
    """Live figures of an edit and every broken rule (nothing written)."""
    from grid_builder.edit import service

    if _boundary(principal, body.operations):
        from grid_builder.edit.boundary import preview_boundary

        return {**preview_boundary(conn, body.operations, (float(body.band[0]), float(body.band[1]))),
                "operations": body.operations, "snaps": []}
    _check_community(conn, principal, EDIT, body.community_code)
    ops, snaps = _snapped(conn, body.community_code, body.operations, body.snap_m)
    out = service.preview(conn, body.community_code, ops, (float(body.band[0]), float(body.band[1])))
    _check(conn, principal, EDIT, body.community_code, out["touched"])
    return {**out, "operations": ops, "snaps": snaps}


@router.post("/grid-edits", status_code=201, summary="保存网格编辑草稿",
             dependencies=[audited("grid_edit.save", read=_edit_read)])
def save_draft(body: EditIn, request: Request, conn: Connection = Depends(db_conn, scope="function"),
               principal: r.Principal = Depends(requires(EDIT))):
    """Save a draft; 422 naming the rule and place when it breaks one, 409 when its base is stale."""
    from grid_builder.edit import service

    _no_boundary_draft(principal, body.operations)
    _check_community(conn, principal, EDIT, body.community_code)
    service.check_given_base(conn, body.base_versions)
    ops, _snaps = _snapped(conn, body.community_code, body.operations, body.snap_m)
    _check(conn, principal, EDIT, body.community_code, _touched(conn, body.community_code, ops))
    out = service.save_draft(conn, body.community_code, ops, body.reason, principal.actor, body.base_versions)
    note_records(request, out["id"])
    return out


@router.put("/grid-edits/{edit_id:int}", summary="再次保存草稿（基于的版本已变化时 409）",
            dependencies=[audited("grid_edit.save", read=_edit_read)])
def save_again(edit_id: RowIdPath, body: EditIn, conn: Connection = Depends(db_conn, scope="function"),
               principal: r.Principal = Depends(requires(EDIT))):
    """Save a draft again (its creator or an office role)."""
    from grid_builder.edit import service

    _no_boundary_draft(principal, body.operations)
    e = _edit_checked(conn, principal, EDIT, edit_id)
    if e["created_by"] != principal.actor and principal.role == r.GRID_MANAGER:
        raise r.PermissionDenied(r.OUTSIDE, code="outside_jurisdiction")
    _check_community(conn, principal, EDIT, body.community_code)
    service.ensure_current(conn, edit_id)
    ops, _snaps = _snapped(conn, body.community_code, body.operations, body.snap_m)
    _check(conn, principal, EDIT, body.community_code, _touched(conn, body.community_code, ops))
    return service.save_draft(conn, body.community_code, ops, body.reason, principal.actor,
                              body.base_versions, edit_id=edit_id)


@router.post("/grid-edits/{edit_id:int}/submit", summary="提交草稿待审批",
             dependencies=[audited("grid_edit.submit", read=_edit_read)])
def submit(edit_id: RowIdPath, conn: Connection = Depends(db_conn, scope="function"),
           principal: r.Principal = Depends(requires(EDIT))):
    """Draft → submitted."""
    from grid_builder.edit import service

    _edit_checked(conn, principal, EDIT, edit_id)
    return service.submit(conn, edit_id, principal.actor)


@router.post("/grid-edits/{edit_id:int}/approve", summary="批准：写入受影响网格的新版本",
             dependencies=[audited("grid_edit.approve", read=_edit_read)])
def approve(edit_id: RowIdPath, body: DecisionIn, conn: Connection = Depends(db_conn, scope="function"),
            principal: r.Principal = Depends(requires(REVIEW))):
    """Submitted → approved and applied (admins may approve a draft directly)."""
    from grid_builder.edit import service

    _edit_checked(conn, principal, REVIEW, edit_id)
    return service.approve(conn, edit_id, principal.actor, body.reason, direct=principal.role == r.ADMIN)


@router.post("/grid-edits/{edit_id:int}/reject", summary="驳回（须说明理由）",
             dependencies=[audited("grid_edit.reject", read=_edit_read)])
def reject(edit_id: RowIdPath, body: DecisionIn, conn: Connection = Depends(db_conn, scope="function"),
           principal: r.Principal = Depends(requires(REVIEW))):
    """Submitted → rejected with a reason."""
    from grid_builder.edit import service

    _edit_checked(conn, principal, REVIEW, edit_id)
    return service.reject(conn, edit_id, principal.actor, body.reason)


@router.post("/grid-edits/{edit_id:int}/rollback", summary="回退已批准的编辑（作为新版本）",
             dependencies=[audited("grid_edit.rollback", read=_edit_read)])
def rollback(edit_id: RowIdPath, body: DecisionIn, request: Request,
             conn: Connection = Depends(db_conn, scope="function"),
             principal: r.Principal = Depends(requires(REVIEW))):
    """Undo an approved edit as a new version of each grid it wrote."""
    from grid_builder.edit import service
    from grid_builder.edit.errors import EditRefused

    if not body.reason.strip():
        raise EditRefused("reason_required", "回退须说明理由 (a rollback needs a reason)")
    e = _edit_checked(conn, principal, REVIEW, edit_id)
    if _boundary(principal, e["operations"]):  # a boundary edit: admins roll it back
        from grid_builder.edit.boundary import rollback_boundary

        out = rollback_boundary(conn, edit_id, principal.actor, body.reason)
    else:
        out = service.rollback(conn, edit_id, principal.actor, body.reason)
    note_records(request, edit_id, out["id"])
    return out


@router.post("/grid-edits/apply", status_code=201, summary="管理员直接生效网格编辑",
             dependencies=[audited("grid_edit.apply", read=_edit_read)])
def apply_directly(body: EditIn, request: Request, conn: Connection = Depends(db_conn, scope="function"),
                   principal: r.Principal = Depends(requires(APPLY))):
    """Save and apply in one step (admins)."""
    from grid_builder.edit import service

    if _boundary(principal, body.operations):
        from grid_builder.edit.boundary import apply_boundary

        out = apply_boundary(conn, body.community_code, body.operations, body.reason, principal.actor)
        note_records(request, out["id"])
        return out
    _check_community(conn, principal, APPLY, body.community_code)
    ops, _snaps = _snapped(conn, body.community_code, body.operations, body.snap_m)
    draft = service.save_draft(conn, body.community_code, ops, body.reason, principal.actor, body.base_versions)
    note_records(request, draft["id"])
    return service.approve(conn, draft["id"], principal.actor, body.reason, direct=True)


@router.get("/grid-edits", summary="网格编辑列表（待审批等），限本人管辖范围")
def list_edits(status: str | None = Query(None, pattern="^(draft|submitted|approved|rejected)$"),
               community: str | None = Query(None, pattern=_CODE),
               conn: Connection = Depends(db_conn, scope="function"),
               principal: r.Principal = Depends(requires(EDIT))):
    """Edits within the caller's jurisdiction, newest first."""
    from grid_builder.edit import service

    rows = service.list_edits(conn, status, community)
    targets: dict[str, dict] = {}
    out = []
    for e in rows:
        t = targets.setdefault(e["community_code"], service.edit_target(conn, e["community_code"], []))
        if r.can(principal, EDIT, {**t, "grid": e["touched"]}):
            out.append({k: v for k, v in e.items() if k not in ("result",)})
    return {"edits": out, "numberReturned": len(out)}


@router.get("/grid-edits/{edit_id:int}", summary="一次网格编辑（含结果与映射）")
def get_edit(edit_id: RowIdPath, conn: Connection = Depends(db_conn, scope="function"),
             principal: r.Principal = Depends(requires(EDIT))):
    """One edit with its result (codes written, lineage, figures)."""
    return _edit_checked(conn, principal, EDIT, edit_id)


@router.get("/grids/{code}/history", dependencies=[Depends(requires("grids:read"))],
            summary="网格的版本时间线（何时、何人、何故）与编码映射")
def history(code: str, conn: Connection = Depends(db_conn, scope="function")):
    """Every version of a grid code and the old → new code relations naming it."""
    from grid_builder.edit import service

    return service.history(conn, code)


@router.get("/grids/{code}/diff", dependencies=[Depends(requires("grids:read"))],
            summary="网格两个版本之间的差异：面积、户数、建筑")
def diff(code: str, v1: int = row_id_query("版本 from version", alias="from"), v2: int = row_id_query("版本 to version", alias="to"),
         conn: Connection = Depends(db_conn, scope="function")):
    """Area gained / lost (GeoJSON), households and buildings gained / lost between two versions."""
    from grid_builder.edit import service

    return service.diff(conn, code, v1, v2)
