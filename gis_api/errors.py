"""The one place that maps domain errors to HTTP statuses and error codes (API and CLI alike).

Domain packages raise `geo.errors` classes (or their own subclasses); nothing below this module knows
about HTTP. `ERROR_TABLE` gives each class its status and default code; a subclass not listed takes its
nearest listed base. Body shape, for every error:
`{"error": "<code>", "message": "<what was wrong>", "detail": <optional structured detail>}`.
"""

from __future__ import annotations

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


def install_handlers(app) -> None:
    """Register the handlers that turn every error into the one JSON shape."""
    from fastapi import Request
    from fastapi.encoders import jsonable_encoder
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from sqlalchemy.exc import OperationalError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    async def _domain_error(_request: Request, exc: Exception):
        status, code = status_and_code(exc)
        message = getattr(exc, "message", None) or str(exc)
        return JSONResponse(error_body(code, message, getattr(exc, "detail", None)), status_code=status)

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
    async def _http_error(_request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(OperationalError)
    async def _db_down(_request: Request, exc: OperationalError):
        return JSONResponse(
            error_body("database_unavailable", "数据库不可用 database unavailable: " + str(exc.orig).strip().splitlines()[0]),
            status_code=503,
        )
