"""Request-body size limits for upload endpoints, enforced before the body is read.

FastAPI parses a multipart form (``File(...)``, ``Form(...)``) before the endpoint or any dependency
runs, so a size check inside the endpoint comes after the whole upload has been received and spooled.
A route declared with :func:`upload_route` checks instead, before the first byte of the body is read:

- a ``Content-Length`` header above the limit → 413 at once (the body is never read);
- a body without ``Content-Length`` (chunked) or with a lying one → reading stops at limit + 1 bytes
  → 413.

The 413 has the one error shape of :mod:`gis_api.errors` (``payload_too_large``, a Chinese + English
message, ``detail.max_bytes``). Usage::

    @upload_route(router, "/import", max_bytes=MAX_IMPORT_BYTES + 64 * 1024, shown_bytes=MAX_IMPORT_BYTES,
                  status_code=201, summary="…")
    async def import_file(file: UploadFile = File(...), …): …
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.types import Message

from gis_api.errors import BadRequest, PayloadTooLarge

#: paths of routes declared with `upload_route` (their own, larger limit replaces the general one)
UPLOAD_PATHS: set[str] = set()


class BodyLimitMiddleware:
    """The general request-body limit of every other endpoint (``SHEQU_MAX_JSON_BYTES``), checked before
    the body is read: a larger ``Content-Length`` gets 413 at once, a chunked or lying body is cut at the
    limit (413). Routes declared with `upload_route` keep their own limits."""

    def __init__(self, app: Any, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Pass the request on with its body capped (or answer 413 at once)."""
        if scope["type"] != "http" or scope["path"] in UPLOAD_PATHS or scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"").strip()
        if declared.isdigit() and int(declared) > self.max_bytes:
            await _send_413(send, self.max_bytes)
            return
        received = 0
        started = False

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyOverLimit()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, capped_receive, tracking_send)
        except _BodyOverLimit:
            if not started:
                await _send_413(send, self.max_bytes)


async def _send_413(send: Any, max_bytes: int) -> None:
    import orjson

    from gis_api.errors import error_body

    err = too_large(max_bytes)
    body = orjson.dumps(error_body("payload_too_large", err.message, err.detail))
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def too_large(max_bytes: int) -> PayloadTooLarge:
    """The 413 error for a body over ``max_bytes``, its limit in words and in ``detail.max_bytes``."""
    mb = max_bytes / (1024 * 1024)
    size = f"{mb:g} MB" if mb >= 1 else f"{max_bytes} bytes"
    return PayloadTooLarge(
        f"上传内容过大，最多 {size} upload too large: at most {max_bytes} bytes ({size})",
        {"max_bytes": max_bytes},
    )


class _BodyOverLimit(HTTPException):
    """Raised from inside the body stream; an HTTPException so FastAPI's body parsing re-raises it
    as it is (other exceptions there become a generic 400)."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail="upload too large")


def check_content_length(request: Request, max_bytes: int, shown_bytes: int | None = None) -> None:
    """413 when the declared Content-Length is above ``max_bytes``; 400 when it is not a number."""
    declared = request.headers.get("content-length")
    if declared is None:
        return
    declared = declared.strip()
    if not declared.isdigit():
        raise BadRequest(f"Content-Length 无效 invalid Content-Length header: {declared[:40]!r}")
    if int(declared) > max_bytes:
        raise too_large(max_bytes if shown_bytes is None else shown_bytes)


def limited_request(request: Request, max_bytes: int) -> Request:
    """The same request whose body stream stops with 413 once more than ``max_bytes`` arrived."""
    received = 0
    receive = request.receive

    async def capped_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise _BodyOverLimit()
        return message

    return Request(request.scope, capped_receive)


def body_limit_route_class(max_bytes: int, shown_bytes: int | None = None) -> type[APIRoute]:
    """An APIRoute class whose handler applies both checks before FastAPI reads the body.

    ``shown_bytes``: the limit the 413 message names (e.g. the file limit, when ``max_bytes`` adds
    room for the multipart envelope around the file); default ``max_bytes``."""
    if max_bytes < 0:
        raise ValueError("max_bytes must be >= 0")
    shown = max_bytes if shown_bytes is None else shown_bytes

    class BodyLimitRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def limited_handler(request: Request) -> Response:
                check_content_length(request, max_bytes, shown)
                try:
                    return await handler(limited_request(request, max_bytes))
                except _BodyOverLimit as exc:
                    raise too_large(shown) from exc

            return limited_handler

    BodyLimitRoute.__name__ = f"BodyLimitRoute{max_bytes}"
    return BodyLimitRoute


def upload_route(
    router: APIRouter,
    path: str,
    *,
    max_bytes: int,
    shown_bytes: int | None = None,
    methods: tuple[str, ...] = ("POST",),
    **kwargs: Any,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator like ``router.post(path, **kwargs)`` for a route whose body is at most ``max_bytes``."""
    route_class = body_limit_route_class(max_bytes, shown_bytes)
    UPLOAD_PATHS.add(router.prefix + path)  # exempt from the general JSON body limit: it has its own

    def decorator(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        router.add_api_route(
            path, endpoint, methods=list(methods), route_class_override=route_class, **kwargs
        )
        return endpoint

    return decorator
