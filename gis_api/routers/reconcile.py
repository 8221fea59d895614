"""Police–grid reconciliation of 一标三实 (实时比对): ``/reconcile/…``.

- ``POST /reconcile/police-import?police_area=…`` (police / admin, within the area): the station's extract
  (CSV UTF-8 / GB18030 or .xlsx; layout in residents/README.md), stored as its own source, all or nothing.
- ``POST /reconcile/run?police_area=…`` (police / admin): compare the latest extract with the grid's records of
  the area; one open task per mismatch, assigned to the police area and to the grid holding the address.
- ``GET /reconcile/tasks`` (grid managers, community / street staff, police, admin): the tasks within the
  caller's jurisdiction (police area, grid, community or township of the task), ID numbers and names
  masked by role, clear reads audited; ``GET /reconcile/tasks/{id}`` with its history.
- ``POST /reconcile/tasks/{id}/state``: confirmed / corrected / dismissed (with reason) / open, audited.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from gis_api.auth import audit, masking
from gis_api.auth import roles as r
from gis_api.auth.audited import audited, note_records
from gis_api.auth.deps import audit_fields, requires
from gis_api.deps import db_conn
from gis_api.errors import NotFound, Unprocessable
from gis_api.params import OffsetQuery
from gis_api.uploads import too_large, upload_route
from residents import reconcile_store as rs

router = APIRouter(prefix="/reconcile", tags=["reconcile 公安与网格比对"])

MAX_IMPORT_BYTES = 5 * 1024 * 1024
MULTIPART_OVERHEAD_BYTES = 64 * 1024
PERSON_MASK = {"subject": "person.id_number", "police_name": "person.name", "grid_name": "person.name",
               "name_police": "person.name", "name_grid": "person.name"}


def _in_area(principal: r.Principal, action: str, police_area: str) -> None:
    """The caller may do ``action`` in the police area (checked after the role, which the route declares)."""
    r.require(principal, action, {"police_area": police_area})


def _task_target(task_id: str, conn: Connection = Depends(db_conn, scope="function")) -> dict[str, Any]:
    """Dependency: the jurisdiction of the task in the path (its police area, grid, community, township)."""
    t = rs.task(conn, int(task_id)) if (task_id.isascii() and task_id.isdigit()) and len(task_id) <= 18 else None
    if t is None:
        return {}
    return {"police_area": t["police_area"], "grid": t["grid_code"], "community": t["community_code"],
            "township": t["township_code"]}


def _flat(t: dict[str, Any]) -> dict[str, Any]:
    """A task as JSON, the personal fields lifted to the top for masking."""
    detail = dict(t.get("detail") or {})
    out = {k: t[k] for k in ("id", "kind", "address_code", "subject", "person_id", "unit_id", "police_area",
                             "grid_code", "community_code", "township_code", "state", "state_reason", "batch_id")}
    out["kind_title"] = rs.KIND_TITLES.get(t["kind"], t["kind"])
    out["record"] = detail.get("record")
    for side in ("police", "grid"):
        if isinstance(detail.get(side), dict):
            out[f"{side}_name"] = detail[side].get("name")
    if "name" in detail:
        out["unit_name"] = detail["name"]
    for key in ("police_address", "grid_address", "grid_use"):
        if key in detail:
            out[key] = detail[key]
    fields = dict(detail.get("fields") or {})
    if isinstance(fields.get("name"), dict):
        out["name_police"], out["name_grid"] = fields["name"].get("police"), fields["name"].get("grid")
        fields.pop("name")
    out["fields"] = fields or None
    out["created_at"] = t["created_at"].isoformat()
    out["updated_at"] = t["updated_at"].isoformat()
    return out


class _Shown:
    """Masks tasks for one caller, collecting the clear reads to audit."""

    def __init__(self, principal: r.Principal):
        self.principal = principal
        self.clear: set[str] = set()
        self.fields: set[str] = set()

    def show(self, t: dict[str, Any]) -> dict[str, Any]:
        flat = _flat(t)
        if flat["record"] != "person" or flat["subject"].startswith("person:"):
            mapping = {k: v for k, v in PERSON_MASK.items() if k != "subject"}
        else:
            mapping = PERSON_MASK
        if flat["record"] != "person":
            mapping = {}
        out, clear = masking.mask_record(flat, mapping, self.principal, in_jurisdiction=True)
        if clear:
            self.clear.add(f"reconcile_task:{t['id']}")
            self.fields.update(clear)
        return out

    def audit(self, conn: Connection, request: Request) -> None:
        if self.clear:
            ids = sorted(self.clear)
            audit.append(conn, audit.AuditEntry.of(self.principal, "reconcile.read_clear", record_ids=ids[:1000],
                                                   detail={"fields": sorted(self.fields), "count": len(ids)},
                                                   **audit_fields(request)))


def _audit_import(conn: Connection, request: Request, principal: r.Principal, report: dict[str, Any],
                  filename: str | None) -> None:
    audit.append(conn, audit.AuditEntry.of(
        principal, "reconcile.police_import", record_ids=[f"police_batch:{report['batch_id']}",
                                                          f"police_area:{report['police_area']}"],
        after={"rows": report["rows"], "counts": report["counts"], "file": filename}, **audit_fields(request)))


@upload_route(
    router, "/police-import", max_bytes=MAX_IMPORT_BYTES + MULTIPART_OVERHEAD_BYTES, shown_bytes=MAX_IMPORT_BYTES,
    status_code=201, summary="导入公安一标三实数据（全部成功才写入） import the police extract, all or nothing",
)
async def police_import(
    request: Request,
    police_area: str = Query(..., max_length=64, description="派出所辖区代码 police-area code"),
    file: UploadFile = File(..., description="CSV（UTF-8 或 GB18030）或 .xlsx 文件"),
    principal: r.Principal = Depends(requires("reconcile:import")),
):
    """The police station's extract of its area, stored as its own source (never written into the grid's
    records). 422 listing every bad row (row, field, reason) and nothing stored when a row fails."""
    from starlette.concurrency import run_in_threadpool

    from residents.importer import read_rows

    _in_area(principal, "reconcile:import", police_area)
    data = await file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise too_large(MAX_IMPORT_BYTES)
    rows = read_rows(data, "police", file.filename)
    engine = request.app.state.engine

    def run() -> dict[str, Any]:
        with engine.begin() as conn:
            report = rs.import_police(conn, police_area, rows, principal.actor, file.filename)
            if not report["errors"]:
                _audit_import(conn, request, principal, report, file.filename)
            return report

    report = await run_in_threadpool(run)
    if report["errors"]:
        raise Unprocessable(f"{len({e['row'] for e in report['errors']})} 行有误，未导入 row(s) rejected; nothing "
                            "was imported", report)
    return report


@router.post("/run", summary="比对公安与网格数据，生成任务 compare and keep the tasks",
             dependencies=[audited("reconcile.run")])
def run_reconcile(request: Request, police_area: str = Query(..., max_length=64),
                  conn: Connection = Depends(db_conn, scope="function"),
                  principal: r.Principal = Depends(requires("reconcile:run"))):
    """Compare the latest police extract of the area with the grid's records: counts per outcome (matched,
    police_only, grid_only, different_address, field_conflict, vacant_occupied, unit_*) and the tasks
    opened, still open and closed as corrected (a mismatch gone since the last run)."""
    _in_area(principal, "reconcile:run", police_area)
    out = rs.run(conn, police_area, principal.actor)
    note_records(request, f"police_area:{police_area}", f"police_batch:{out['batch_id']}")
    return out


@router.get("/tasks", summary="比对任务（管辖范围内） reconciliation tasks within your jurisdiction")
def list_tasks(request: Request,
               state: Literal["open", "confirmed", "corrected", "dismissed"] | None = Query(None),
               kind: str | None = Query(None, max_length=40),
               police_area: str | None = Query(None, max_length=64),
               limit: int = Query(100, ge=1, le=1000), offset: OffsetQuery = 0,
               conn: Connection = Depends(db_conn, scope="function"),
               principal: r.Principal = Depends(requires("reconcile:read"))):
    """Tasks whose police area, grid, community or township is one of the caller's grants (admin: all);
    ID numbers and names masked by role (clear reads audited)."""
    where = r.jurisdiction_filter(principal, "reconcile:read")
    total, rows = rs.list_tasks(conn, where, state, kind, police_area, limit, offset)
    shown = _Shown(principal)
    tasks = [shown.show(t) for t in rows]
    shown.audit(conn, request)
    return {"total": total, "limit": limit, "offset": offset, "tasks": tasks}


@router.get("/summary", summary="按网格统计采集完整度与未处理差异 completeness and open mismatches per grid")
def summary(conn: Connection = Depends(db_conn, scope="function"),
            principal: r.Principal = Depends(requires("reconcile:read"))):
    """Per grid within the caller's jurisdiction: building / room addresses and those with the house use
    recorded, rooms and rooms with people recorded (with the shares), open reconciliation tasks."""
    grids = rs.completeness(conn, r.jurisdiction_filter(principal, "reconcile:read"))
    totals = {k: sum(g[k] for g in grids) for k in ("dwellings", "with_house_use", "rooms", "rooms_with_people",
                                                    "open_tasks")}
    return {"grids": grids, "totals": totals}


@router.get("/tasks/{task_id}", summary="比对任务详情与处理记录 a task with its history")
def get_task(task_id: str, request: Request, conn: Connection = Depends(db_conn, scope="function"),
             principal: r.Principal = Depends(requires("reconcile:read", target=_task_target))):
    """One task (masked by role) and its state history."""
    t = rs.task(conn, int(task_id)) if (task_id.isascii() and task_id.isdigit()) and len(task_id) <= 18 else None
    if t is None:
        raise NotFound(f"比对任务不存在 no reconciliation task {task_id}")
    shown = _Shown(principal)
    out = shown.show(t)
    out["history"] = [{**e, "at": e["at"].isoformat()} for e in t["history"]]
    shown.audit(conn, request)
    return out


class StateIn(BaseModel):
    """A task's new state; dismissing needs a reason."""

    state: Literal["open", "confirmed", "corrected", "dismissed"]
    reason: str | None = Field(None, max_length=500, description="理由（驳回时必填）")


@router.post("/tasks/{task_id}/state", summary="处理比对任务 set a task's state",
             dependencies=[audited("reconcile.task_state")])
def set_state(task_id: str, body: StateIn, request: Request, conn: Connection = Depends(db_conn, scope="function"),
              principal: r.Principal = Depends(requires("reconcile:resolve", target=_task_target))):
    """confirmed (the mismatch is real), corrected (fixed in one of the sources), dismissed (with reason),
    open (reopen). 409 when the task already has that state."""
    if not (task_id.isascii() and task_id.isdigit()) or len(task_id) > 18:
        raise NotFound(f"比对任务不存在 no reconciliation task {task_id}")
    t = rs.change_state(conn, int(task_id), body.state, body.reason, principal.actor)
    note_records(request, f"reconcile_task:{task_id}")
    shown = _Shown(principal)
    out = shown.show(t)
    out["history"] = [{**e, "at": e["at"].isoformat()} for e in t["history"]]
    shown.audit(conn, request)
    return out
