"""Bulk import of people, houses and units (CSV UTF-8 / GB18030 or .xlsx): ``POST /residents/import``.

Staff with ``residents:write``; each row's address must lie in the caller's jurisdiction (else that row is
rejected). Mode ``all`` (default): one bad row → 422 listing every bad row (row, field, reason), nothing
written. Mode ``valid``: the valid rows are written and the rejected ones reported. The upload is capped
before it is read (`gis_api.uploads`); the import runs in one transaction with its audit entry.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Connection

from gis_api.auth import audit, targets
from gis_api.auth import roles as r
from gis_api.auth.deps import audit_fields, requires
from gis_api.errors import Unprocessable
from gis_api.uploads import too_large, upload_route

router = APIRouter(prefix="/residents", tags=["residents 一标三实"])

MAX_IMPORT_BYTES = 5 * 1024 * 1024
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def _allowed(principal: r.Principal):
    """Per-row jurisdiction check of the caller (None: everywhere)."""
    if r.jurisdiction_filter(principal, "residents:write") is None:
        return None

    def allowed(conn: Connection, code: str) -> bool:
        return r.within(principal, targets.address_target(conn, code))

    return allowed


def _audit(conn: Connection, request: Request, principal: r.Principal, report: dict[str, Any],
           filename: str | None) -> None:
    """The import's audit entry, committed with the rows it records."""
    audit.append(conn, audit.AuditEntry.of(
        principal, "residents.import", record_ids=report["written"][:1000],
        after={"kind": report["kind"], "rows": report["rows"], "imported": len(report["written"]),
               "rejected": len(report["rejected_rows"]), "mode": report["mode"], "file": filename},
        **audit_fields(request)))


@upload_route(
    router, "/import", max_bytes=MAX_IMPORT_BYTES + MULTIPART_OVERHEAD_BYTES, shown_bytes=MAX_IMPORT_BYTES,
    status_code=201, summary="批量导入实有人口、房屋、单位（CSV / xlsx） bulk import people, houses or units",
)
async def import_residents(
    request: Request,
    file: UploadFile = File(..., description="CSV（UTF-8 或 GB18030）或 .xlsx 文件"),
    kind: Literal["people", "houses", "units"] = Query(..., description="people 人员 | houses 房屋 | units 单位"),
    mode: Literal["all", "valid"] = Query("all", description="all 全部成功才写入 | valid 只写入有效行"),
    dry_run: bool = Query(False, description="只校验不写入 validate only"),
    principal: r.Principal = Depends(requires("residents:write")),
):
    """Every row is checked like a single create (ID number, credit code, phone, address, duplicates in
    the records and in the file). The columns are in residents/README.md. Mode ``all``: 422 with
    ``detail.errors`` when a row fails, nothing written; mode ``valid``: 201 with the rejected rows listed."""
    from starlette.concurrency import run_in_threadpool

    from residents.importer import import_file, read_rows

    data = await file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise too_large(MAX_IMPORT_BYTES)
    rows = read_rows(data, kind, file.filename)
    engine = request.app.state.engine

    def run() -> dict[str, Any]:
        return import_file(engine, kind, rows, principal.actor, mode, dry_run, allowed=_allowed(principal),
                           before_commit=lambda conn, rep: _audit(conn, request, principal, rep, file.filename))

    report = await run_in_threadpool(run)
    body = {k: report[k] for k in ("kind", "mode", "dry_run", "rows", "imported", "committed", "rejected_rows",
                                   "errors")}
    body["written"] = report["written"] if report["committed"] else []
    if mode == "all" and report["errors"]:
        raise Unprocessable(
            f"{len(report['rejected_rows'])} 行有误，未写入任何记录 {len(report['rejected_rows'])} row(s) rejected; "
            "nothing was imported", body)
    if dry_run or not report["committed"]:
        return JSONResponse(body, status_code=200)
    return body
