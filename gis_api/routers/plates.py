"""QR door plates when scanned (扫码门牌): ``/p/{code}?c=…`` (the page), ``/plates/{code}`` (its data), reports.

A plate's QR holds ``{SHEQU_PUBLIC_BASE_URL}/p/{code}?c={check}`` (`address_registry.plates`): the short
path keeps the QR small. The page (``gis_api/static/scan/``, no CDN) checks nothing itself: it asks
``GET /plates/{code}?c=…``, which verifies the check (HMAC, constant time) before it reads the database,
so a forged or mistyped plate gets the same 400 whether or not the address exists. The public sees the
address and whom to contact (names and phones masked); staff within the jurisdiction see them in clear,
each clear read audited. ``POST /plates/{code}/reports`` files a "wrong plate" correction task.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from address_registry import codes, store
from address_registry.plates import verify_plate
from gis_api import plates
from gis_api.auth import audit, targets
from gis_api.auth import roles as r
from gis_api.auth.audited import audited, note_records
from gis_api.auth.deps import audit_fields, client_ip, current_principal, open_route, rate_limiter, requires
from gis_api.deps import db_conn
from gis_api.errors import BadRequest, NotFound

SCAN_DIR = Path(__file__).resolve().parent.parent / "static" / "scan"
ROOM_LEVELS = ("unit", "floor", "room")
#: "report a wrong plate" requests per minute and client address
REPORTS_PER_MIN = 10

UNVERIFIED = ("门牌无法核验：二维码或编码有误，可能是伪造或输入错误的门牌 "
              "plate could not be verified: the check does not match the code")
GONE = "标准地址不存在或已注销 no active address {code}"

router = APIRouter(tags=["plates 二维码门牌"])


def _verified(request: Request, code: str, check: str | None) -> bool:
    """True when ``code`` is a well-formed standard-address code and ``check`` its plate check."""
    return codes.is_valid(code) and verify_plate(code, check, plates.plate_key(request))


def _active(conn: Connection, code: str):
    """The current version of an active address, else None."""
    rec = store.current(conn, code)
    return rec if rec is not None and rec.status == "active" else None


def _page(status: int, title: str, message: str) -> HTMLResponse:
    """A small Chinese error page (same look as the scan page)."""
    body = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{escape(title)} · 社区门牌</title><link rel="stylesheet" href="/static/scan/scan.css"></head>'
        f'<body><main class="card error" id="error"><h1>{escape(title)}</h1><p>{escape(message)}</p>'
        '<p class="hint">如需帮助，请联系所在社区居委会。</p></main></body></html>'
    )
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


@router.get("/p/{code}", response_class=HTMLResponse,
            summary="扫码门牌页面（手机） QR plate scan page",
            responses={400: {"description": "门牌无法核验（页面） the plate does not verify (a page)",
                             "content": {"text/html": {}}},
                       404: {"description": "地址不存在或已注销（页面） unknown or retired address (a page)",
                             "content": {"text/html": {}}}},
            dependencies=[Depends(open_route("QR plate scan page"))])
def scan_page(request: Request, code: str, c: str | None = Query(None, max_length=16, description="门牌校验码"),
              conn: Connection = Depends(db_conn, scope="function")):
    """The mobile scan page of a plate; its script reads `GET /plates/{code}`. 400 page for a plate whose
    check does not verify (forged or mistyped), 404 page for an unknown or retired address."""
    if not _verified(request, code, c):
        return _page(400, "门牌无法核验", "该二维码门牌未能通过校验，可能是伪造、损坏或输入有误的门牌。"
                     "The plate could not be verified.")
    if _active(conn, code) is None:
        return _page(404, "地址不存在或已注销", f"标准地址 {code} 不存在或已注销。No active address {code}.")
    return FileResponse(SCAN_DIR / "index.html", media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})


def _print_area(road: str | None, compound: str | None, community: str | None) -> tuple[str, str]:
    """The one area of a plate print: (kind, code); 400 unless exactly one is given."""
    chosen = [(k, v) for k, v in (("road", road), ("compound", compound), ("community", community)) if v]
    if len(chosen) != 1:
        raise BadRequest("请只给出 road、compound、community 之一 give exactly one of road, compound, community",
                         code="plate_area")
    return chosen[0]


def _print_target(conn: Connection, kind: str, code: str) -> dict:
    """The jurisdiction of the printed area (a community, or the road / compound address)."""
    if kind == "community":
        return targets.community_target(conn, code)
    return targets.address_target(conn, code)


@router.get("/plates/print.pdf", response_class=Response,
            summary="印制二维码门牌（PDF，每页一块，实际尺寸） print-ready QR door plates as PDF",
            dependencies=[audited("plates.print")])
def print_plates(request: Request, road: str | None = Query(None, max_length=32, description="街路巷编码 road code"),
                 compound: str | None = Query(None, max_length=32, description="小区编码 compound code"),
                 community: str | None = Query(None, max_length=12, description="社区代码 community code"),
                 size: Literal["large", "medium", "small"] = Query("medium", description="门牌规格 plate size"),
                 levels: str = Query("house_number", max_length=80,
                                     description="门牌层级，逗号分隔 house_number, compound, building, unit, room"),
                 conn: Connection = Depends(db_conn, scope="function"),
                 principal: r.Principal = Depends(requires("plates:print"))):
    """The plates of every active address of ``levels`` on a road (its house numbers and below), in a
    compound or in a community, one PDF page per plate at its real size (large 570×370 mm with a 120 mm QR,
    medium 270×170 / 75 mm, small 150×90 / 40 mm); each QR holds the signed scan link; the CJK font is
    embedded. Office staff within their jurisdiction; at most 2000 plates (413)."""
    from address_registry.plate_pdf import plates_pdf

    kind, code = _print_area(road, compound, community)
    r.require(principal, "plates:print", _print_target(conn, kind, code))
    recs = plates.plate_selection(conn, kind, code, tuple(x.strip() for x in levels.split(",") if x.strip()))
    base = request.app.state.settings.public_base_url
    pdf = plates_pdf(recs, base, plates.plate_key(request), size)
    note_records(request, f"{kind}:{code}", f"plates:{len(recs)}")
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="plates-{kind}-{code}.pdf"', "Cache-Control": "no-store"})


@router.get("/plates/{code}", dependencies=[Depends(requires("addresses:read"))],
            summary="扫码门牌数据：地址、网格、联系人 what a plate scan shows")
def plate_data(request: Request, response: Response, code: str,
               c: str | None = Query(None, max_length=16, description="门牌校验码"),
               conn: Connection = Depends(db_conn, scope="function"),
               principal: r.Principal = Depends(current_principal)):
    """The standard address, its level, community, grid and micro-grid, the current grid staff and the
    社区民警 of its police area. Names and phones are masked unless the caller may read them in clear within
    the address's jurisdiction (then the read is audited). 400 when the check does not verify; 404 for an
    unknown or retired address; room-level plates need staff rights."""
    if not _verified(request, code, c):
        raise BadRequest(UNVERIFIED, code="plate_unverified")
    rec = _active(conn, code)
    if rec is None:
        raise NotFound(GONE.format(code=code))
    if rec.level in ROOM_LEVELS:
        r.require(principal, "addresses:read_internal")
    view, clear = plates.scan_view(conn, rec, principal)
    if clear:
        audit.append(conn, audit.AuditEntry.of(principal, "plate.contacts_read", record_ids=[code],
                                               detail={"clear_fields": clear}, **audit_fields(request)))
    response.headers["Cache-Control"] = "no-store"
    view["user"] = principal.public_dict() if principal.is_authenticated else None
    return view


class ReportIn(BaseModel):
    """Body of POST /plates/{code}/reports: what is wrong with the plate."""

    c: str = Field(..., max_length=16, description="门牌校验码（二维码中的 c）")
    kind: Literal["wrong_address", "wrong_place", "damaged", "wrong_contact", "other"] = Field(
        "wrong_address", description="问题类型 " + "、".join(f"{k} {v}" for k, v in plates.REPORT_KINDS.items()))
    note: str | None = Field(None, max_length=500, description="补充说明（请勿填写个人信息）")


@router.post("/plates/{code}/reports", status_code=201,
             dependencies=[Depends(requires("addresses:read")), audited("plate.report")],
             summary="报告门牌有误（生成纠错任务） report a wrong plate")
def report_plate(request: Request, code: str, body: ReportIn,
                 conn: Connection = Depends(db_conn, scope="function"),
                 principal: r.Principal = Depends(current_principal)):
    """Anyone who scanned the plate may report it wrong: a correction task (state `open`) is stored and
    audited. Limited to 10 reports a minute per client address (429); the check must verify (400)."""
    rate_limiter(request).take(f"plate-report:{client_ip(request) or '?'}", REPORTS_PER_MIN)
    if not _verified(request, code, body.c):
        raise BadRequest(UNVERIFIED, code="plate_unverified")
    if _active(conn, code) is None:
        raise NotFound(GONE.format(code=code))
    note = body.note.strip() if body.note and body.note.strip() else None
    row = plates.add_report(conn, code, body.kind, note, principal.actor)
    note_records(request, code, f"plate_report:{row['id']}")
    return {**row, "kind_title": plates.REPORT_KINDS[body.kind], "message": "已收到，感谢您的反馈 report filed"}


# ---- the staff side of the reports: list within jurisdiction, close / reopen ----

def _report_target(report_id: str, conn: Connection = Depends(db_conn, scope="function")) -> dict:
    """Dependency: the jurisdiction of the report's address (empty for an unknown report)."""
    code = plates.report_address(conn, int(report_id)) if (report_id.isascii() and report_id.isdigit()) and len(report_id) <= 18 else None
    return targets.address_target(conn, code) if code else {}


@router.get("/plate-reports", summary="门牌纠错报告（管辖范围内） wrong-plate reports within your jurisdiction")
def list_reports(address_code: str | None = Query(None, max_length=32, description="只看该地址 one address"),
                 state: Literal["open", "confirmed", "corrected", "dismissed"] | None = Query(None),
                 limit: int = Query(100, ge=1, le=1000),
                 conn: Connection = Depends(db_conn, scope="function"),
                 principal: r.Principal = Depends(requires("plates:reports"))):
    """Reports whose address lies in the caller's township, community, grid or police area (admin: all),
    newest first. Notes are free text the public typed (the form asks for no personal information)."""
    where = r.jurisdiction_filter(principal, "plates:reports")
    return {"reports": plates.list_reports(conn, where, address_code, state, limit)}


class ReportStateIn(BaseModel):
    """A report's new state; dismissing needs a reason."""

    state: Literal["open", "confirmed", "corrected", "dismissed"]
    reason: str | None = Field(None, max_length=500, description="处理说明（驳回时必填）")


@router.post("/plate-reports/{report_id}/state", summary="处理门牌纠错报告 close or reopen a report",
             dependencies=[audited("plate.report_state")])
def report_state(report_id: str, body: ReportStateIn, request: Request,
                 conn: Connection = Depends(db_conn, scope="function"),
                 principal: r.Principal = Depends(requires("plates:reports", target=_report_target))):
    """confirmed (the plate is wrong, being fixed), corrected (fixed), dismissed (with reason), open again;
    409 when it already has that state, 404 for an unknown report. Audited."""
    if not (report_id.isascii() and report_id.isdigit()) or len(report_id) > 18:
        raise NotFound(f"门牌报告不存在 no plate report {report_id}")
    out = plates.set_report_state(conn, int(report_id), body.state, body.reason)
    note_records(request, f"plate_report:{report_id}", out["address_code"])
    return out
