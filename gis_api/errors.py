"""Domain errors and the one place that maps them to HTTP responses.

Routes raise these; they never build error responses themselves. Body shape, for every error:
`{"error": "<code>", "message": "<what was wrong>", "detail": <optional structured detail>}`.
"""

from __future__ import annotations

from typing import Any


class ShequError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, detail: Any = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail
        if code:
            self.code = code


class BadRequest(ShequError):
    status_code, code = 400, "bad_request"


class Unauthorized(ShequError):
    status_code, code = 401, "unauthorized"


class Forbidden(ShequError):
    status_code, code = 403, "forbidden"


class NotFound(ShequError):
    status_code, code = 404, "not_found"


class Conflict(ShequError):
    status_code, code = 409, "conflict"


class PayloadTooLarge(ShequError):
    status_code, code = 413, "payload_too_large"


class Unprocessable(ShequError):
    status_code, code = 422, "unprocessable"


class ServiceUnavailable(ShequError):
    status_code, code = 503, "service_unavailable"


def error_body(code: str, message: str, detail: Any = None) -> dict:
    body: dict[str, Any] = {"error": code, "message": message}
    if detail is not None:
        body["detail"] = detail
    return body


def install_handlers(app) -> None:
    """Register the handlers that turn every error into the one JSON shape."""
    from fastapi import Request
    from fastapi.encoders import jsonable_encoder
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from sqlalchemy.exc import OperationalError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from gis_api.crs import CrsError

    @app.exception_handler(ShequError)
    async def _shequ_error(_request: Request, exc: ShequError):
        return JSONResponse(error_body(exc.code, exc.message, exc.detail), status_code=exc.status_code)

    @app.exception_handler(CrsError)
    async def _crs_error(_request: Request, exc: CrsError):
        return JSONResponse(error_body("invalid_coordinates", str(exc)), status_code=422)

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
