"""The one place that maps domain errors to HTTP statuses and error codes (API and CLI alike).

Domain packages raise `geo.errors` classes (or their own subclasses); nothing below this module knows
about HTTP. `ERROR_TABLE` gives each class its status and default code; a subclass not listed takes its
nearest listed base. Body shape, for every error:
`{"error": "<code>", "message": "<what was wrong>", "detail": <optional structured detail>}`.
"""

from __future__ import annotations

import logging
from typing import Any

from geo.crs import CrsError
from geo.errors import (
    BadRequest,
    Conflict,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    RateLimited,
    ShequError,
    StaleVersion,
    TooLarge,
    Unavailable,
)

log = logging.getLogger(__name__)

# The names routers used before the table; they are the domain classes themselves.
Unauthorized = NotAuthenticated
Forbidden = PermissionDenied
PayloadTooLarge = TooLarge
Unprocessable = InvalidInput
ServiceUnavailable = Unavailable
PreconditionFailed = StaleVersion
TooManyRequests = RateLimited

__all__ = [
    "ERROR_TABLE",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "PayloadTooLarge",
    "PreconditionFailed",
    "ServiceUnavailable",
    "ShequError",
    "TooManyRequests",
    "Unauthorized",
    "Unprocessable",
    "cli_message",
    "allowed_methods",
    "error_body",
    "install_handlers",
    "status_and_code",
]

#: error class → (HTTP status, default error code). Most specific first is not needed: lookup walks the MRO.
ERROR_TABLE: dict[type[Exception], tuple[int, str]] = {
    ShequError: (400, "bad_request"),
    BadRequest: (400, "bad_request"),
    NotAuthenticated: (401, "unauthorized"),
    PermissionDenied: (403, "forbidden"),
    NotFound: (404, "not_found"),
    Conflict: (409, "conflict"),
    StaleVersion: (412, "stale_version"),
    TooLarge: (413, "payload_too_large"),
    InvalidInput: (422, "unprocessable"),
    CrsError: (422, "invalid_coordinates"),
    RateLimited: (429, "rate_limited"),
    Unavailable: (503, "service_unavailable"),
}


def status_and_code(exc: BaseException) -> tuple[int, str]:
    """The HTTP status and error code of an exception by the table (its own ``code`` wins when set)."""
    for cls in type(exc).__mro__:
        if cls in ERROR_TABLE:
            status, code = ERROR_TABLE[cls]
            own = getattr(exc, "code", None)
            return status, own if isinstance(own, str) and own else code
    return 500, "internal_error"


RETRY_AFTER_S = 2
BUSY = "服务繁忙，请稍后重试 the service is busy: retry shortly"
_DB_MESSAGES = {
    "conflict": "与现有数据冲突（重复或被引用） the change conflicts with existing data (duplicate or referenced)",
    "statement_timeout": "查询超时 the query took too long and was cancelled",
    "invalid_value": "数据无效（含 NUL 字符或数值超出范围） invalid value: a NUL character or a number out of range",
    "database_unavailable": "数据库不可用 database unavailable",
    "database_error": "数据库错误 database error",
    "disk_full": "数据库磁盘已满，本次写入未保存（已有数据不受影响，仍可查询），请联系管理员释放空间 the database's "
                 "disk is full: nothing of this write was saved (existing data is intact and can still be read)",
}


def _client_side_data_error(exc: BaseException) -> bool:
    """True when the driver refused a value before sending it (psycopg ``DataError``: NUL in text, …)."""
    orig = getattr(exc, "orig", None)
    return any(cls.__name__ == "DataError" for cls in type(orig).__mro__) if orig is not None else False


def database_error(exc: BaseException) -> tuple[int, str, str]:
    """(status, code, message) for a database error; the database's own text never reaches the caller."""
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None) or ""
    if sqlstate.startswith("23"):  # integrity: unique, foreign key, exclusion, check
        return 409, "conflict", _DB_MESSAGES["conflict"]
    if sqlstate.startswith("22") or (not sqlstate and _client_side_data_error(exc)):
        # data exception (a number out of range, bad text) or refused before it was sent (a NUL character):
        # the request's value, not the database, is at fault (issue 15: this was a 503 "unavailable")
        return 422, "invalid_value", _DB_MESSAGES["invalid_value"]
    if sqlstate == "53100":  # disk_full: the write was refused and rolled back, the data is intact (issue 15)
        return 507, "disk_full", _DB_MESSAGES["disk_full"]
    if sqlstate == "57014":  # query_canceled: statement_timeout
        return 503, "statement_timeout", _DB_MESSAGES["statement_timeout"]
    if sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03", "53300") or not sqlstate:
        return 503, "database_unavailable", _DB_MESSAGES["database_unavailable"]
    return 500, "database_error", _DB_MESSAGES["database_error"]


def _headers(status: int, detail: Any) -> dict[str, str] | None:
    if status == 401:
        return {"WWW-Authenticate": "Bearer"}
    if status in (429, 503, 507):
        wait = detail.get("retry_after_s") if isinstance(detail, dict) else None
        return {"Retry-After": str(max(1, int(wait or RETRY_AFTER_S)))}
    return None


def error_body(code: str, message: str, detail: Any = None) -> dict:
    """The one JSON error shape."""
    body: dict[str, Any] = {"error": code, "message": message}
    if detail is not None:
        body["detail"] = detail
    return body


def cli_message(exc: BaseException) -> str:
    """The line the CLI prints for a domain error (the same message the API sends; exit status 1)."""
    _, code = status_and_code(exc)
    return f"错误 error [{code}]: {getattr(exc, 'message', None) or exc}"


def allowed_methods(app, scope) -> list[str]:
    """The methods of the request's path (the ``Allow`` of a 405), as the OpenAPI document lists them.

    Starlette names only the methods of the first route whose path matches; a path served by several
    routes (``GET`` and ``PATCH /addresses/{code}``) needs them all (RFC 9110 §15.5.6), and of the
    templates matching the path the most literal one (fewest parameters) is the resource."""
    from starlette.routing import Match

    from gis_api.auth.deps import api_routes

    by_template: dict[int, set[str]] = {}
    for route in api_routes(app):
        match, _ = route.matches({**scope, "method": "GET"})
        if match != Match.NONE:
            # the most literal template names the resource: /addresses/merge, not /addresses/{code}
            by_template.setdefault(len(route.param_convertors), set()).update(route.methods or ())
    return sorted(by_template[min(by_template)]) if by_template else []


def install_handlers(app) -> None:
    """Register the handlers that turn every error into the one JSON shape."""
    from fastapi import Request
    from fastapi.encoders import jsonable_encoder
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.exc import TimeoutError as PoolTimeout
    from starlette.exceptions import HTTPException as StarletteHTTPException

    async def _domain_error(_request: Request, exc: Exception):
        status, code = status_and_code(exc)
        message = getattr(exc, "message", None) or str(exc)
        detail = getattr(exc, "detail", None)
        return JSONResponse(error_body(code, message, detail), status_code=status, headers=_headers(status, detail))

    for cls in ERROR_TABLE:
        app.add_exception_handler(cls, _domain_error)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError):
        errors = jsonable_encoder(exc.errors())
        parts = []
        for err in errors:
            loc = ".".join(str(p) for p in err.get("loc", []) if p != "body")
            parts.append(f"{loc}: {err.get('msg')}")
        message = "请求参数无效 invalid request: " + "; ".join(parts)
        return JSONResponse(error_body("validation_error", message, errors), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(app, request.scope))}
        return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=headers)

    @app.exception_handler(DBAPIError)
    async def _db_error(request: Request, exc: DBAPIError):
        status, code, message = database_error(exc)
        log.warning("database error on %s %s: %s", request.method, request.url.path,
                    str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        return JSONResponse(error_body(code, message), status_code=status, headers=_headers(status, None))

    @app.exception_handler(PoolTimeout)
    async def _pool_exhausted(request: Request, exc: PoolTimeout):
        log.warning("database pool exhausted on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("busy", BUSY), status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})
