"""FastAPI dependencies of the access layer: who is asking (`current_principal`), `requires(action)`,
session and CSRF cookies, and the request facts the audit log records (IP, request id).

Credentials are read in this order: ``Authorization: Bearer <access token>``, the session cookie,
``X-API-Key``. None of them → the anonymous ``public`` principal. A bad bearer token or API key is a
401; a stale session cookie counts as no cookie (the map keeps working for public layers). Writes
(unsafe methods) authenticated by the session cookie must echo the ``csrf`` cookie in ``X-CSRF-Token``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

from fastapi import Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from geo.errors import NotAuthenticated, PermissionDenied

from . import principal_cache, ratelimit, store, tokens
from . import roles as r
from .settings import AuthSettings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CSRF_FAILED = ("CSRF 校验失败：请在 X-CSRF-Token 头中回传 csrf Cookie 的值 "
               "CSRF check failed: echo the csrf cookie's value in the X-CSRF-Token header")


@lru_cache(maxsize=1)
def _default_settings() -> AuthSettings:
    return AuthSettings()


def auth_settings(request: Request) -> AuthSettings:
    """``app.state.auth_settings`` when the app sets it, else the environment's (read once)."""
    return getattr(request.app.state, "auth_settings", None) or _default_settings()


def rate_limiter(request: Request) -> ratelimit.RateLimiter | ratelimit.SharedRateLimiter:
    """``app.state.rate_limiter`` when set, else the process-wide limiter."""
    return getattr(request.app.state, "rate_limiter", None) or ratelimit.default_limiter


def client_ip(request: Request) -> str | None:
    """The peer address (behind a proxy, run uvicorn with --proxy-headers and --forwarded-allow-ips)."""
    return request.client.host if request.client else None


def request_id(request: Request) -> str:
    """The request's id: the caller's ``X-Request-ID`` (trimmed) or a fresh one, kept on request.state."""
    rid = getattr(request.state, "request_id", None)
    if rid is None:
        given = (request.headers.get("x-request-id") or "").strip()[:64]
        rid = given if given.isprintable() and given else uuid.uuid4().hex
        request.state.request_id = rid
    return rid


def audit_fields(request: Request) -> dict[str, Any]:
    """The ``AuditEntry`` keyword arguments a request contributes: ip, request id, endpoint."""
    return {"ip": client_ip(request), "request_id": request_id(request),
            "endpoint": f"{request.method} {request.url.path}"}


_principals = principal_cache.CACHE  # see gis_api.auth.principal_cache


def _credentials(request: Request, settings: AuthSettings) -> str | None:
    """A digest of every credential the request carries (the principal cache's key), None when anonymous."""
    parts = (request.headers.get("authorization"), request.cookies.get(settings.session_cookie),
             request.headers.get("x-api-key"))
    if not any(parts):
        return None
    return tokens.sha256_hex("\x1f".join(p or "" for p in parts))


def _bearer_principal(request: Request, value: str, settings: AuthSettings) -> tuple[r.Principal, float]:
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated(tokens.TOKEN_INVALID, code="token_invalid")
    claims = tokens.decode_access_token(token.strip(), settings)
    kind, _, ident = str(claims["sub"]).partition(":")
    if kind != "user" or not (ident.isascii() and ident.isdigit()):
        raise NotAuthenticated(tokens.TOKEN_INVALID, code="token_invalid")
    with request.app.state.engine.connect() as conn:
        user = store.active_user(conn, int(ident))
        return store.principal_for(conn, user, "token"), float(claims["exp"])


def _session_principal(request: Request, cookie: str) -> r.Principal | None:
    with request.app.state.engine.connect() as conn:
        try:
            user = store.session_user(conn, cookie)
        except NotAuthenticated:
            return None
        return store.principal_for(conn, user, "session")


def _check_request(request: Request, principal: r.Principal, rate: int | None, settings: AuthSettings) -> None:
    """Per-request checks of a known principal: the key's rate limit; CSRF on cookie-authenticated writes."""
    if principal.method == "api_key" and rate is not None:
        rate_limiter(request).take(f"key:{principal.key_id}", rate)
    if principal.method == "session" and request.method not in SAFE_METHODS and not tokens.csrf_ok(
            request.cookies.get(settings.session_cookie) or "", request.cookies.get(settings.csrf_cookie),
            request.headers.get(settings.csrf_header), settings):
        raise PermissionDenied(CSRF_FAILED, code="csrf_failed")


def _resolve(request: Request, settings: AuthSettings) -> tuple[r.Principal, int | None, float | None]:
    """(principal, key rate limit, token expiry) from the database: bearer, then session cookie, then key."""
    authorization = request.headers.get("authorization")
    cookie = request.cookies.get(settings.session_cookie)
    key = request.headers.get("x-api-key")
    if authorization:
        principal, expires = _bearer_principal(request, authorization, settings)
        return principal, None, expires
    if cookie:
        found = _session_principal(request, cookie)
        if found is not None:
            return found, None, None
    if key:
        with request.app.state.engine.connect() as conn:
            principal, rate = store.key_principal(conn, key)
        return principal, rate, None
    return r.ANONYMOUS, None, None


def _cached(digest: str) -> tuple[r.Principal, int | None, float | None] | None:
    hit = _principals.peek(digest)
    if hit is not None and hit[2] is not None and time.time() >= hit[2]:
        return None  # the token expired since it was cached
    return hit


def forget_credentials(request: Request) -> None:
    """Drop the cached principal of this request's credentials (after logout)."""
    digest = _credentials(request, auth_settings(request))
    if digest is not None:
        _principals.invalidate(digest)


def principal_of(request: Request) -> r.Principal:
    """Who is asking (cached on ``request.state.principal``); anonymous callers are ``roles.ANONYMOUS``.

    Synchronous (it may read the database): call it from sync code; routes depend on `current_principal`.
    """
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    settings = auth_settings(request)
    digest = _credentials(request, settings)
    found = None if digest is None else _cached(digest)
    if found is None:
        found = _resolve(request, settings)
        if digest is not None and found[0] is not r.ANONYMOUS:
            _principals.put(digest, found)
    principal, rate, _ = found
    _check_request(request, principal, rate, settings)
    request.state.principal = principal
    return principal


async def current_principal(request: Request) -> r.Principal:
    """Dependency: who is asking. Anonymous requests and credentials verified in the last few seconds are
    answered on the event loop with no I/O; others are checked in the thread pool (database)."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    settings = auth_settings(request)
    digest = _credentials(request, settings)
    if digest is None:
        request.state.principal = r.ANONYMOUS
        return r.ANONYMOUS
    hit = _cached(digest)
    if hit is not None:
        _check_request(request, hit[0], hit[1], settings)
        request.state.principal = hit[0]
        return hit[0]
    return await run_in_threadpool(principal_of, request)


def requires(action: str, target: Callable[..., Any] | None = None) -> Callable[..., Any]:
    """A dependency that returns the principal when it may do ``action``, else 401 / 403.

    ``target`` (optional) is a dependency resolving the record's location (``roles.Target``) for a
    jurisdiction-bound action; without it the route must check the record itself with ``roles.require``.
    The dependency carries ``.action`` so a route-table test can find each route's declared policy.
    """
    if action not in r.ACTIONS:
        raise ValueError(f"undeclared action {action!r}: add it to gis_api.auth.roles.ACTIONS")

    if target is None:
        async def dependency(principal: r.Principal = Depends(current_principal)) -> r.Principal:
            return r.require(principal, action)
    else:
        async def dependency(principal: r.Principal = Depends(current_principal),  # type: ignore[misc]
                             where: Any = Depends(target)) -> r.Principal:
            return r.require(principal, action, where)

    dependency.action = action  # type: ignore[attr-defined]
    dependency.__name__ = f"requires_{action.replace(':', '_')}"
    return dependency


def open_route(reason: str) -> Callable[[], None]:
    """A no-op dependency declaring a route open to everyone on purpose (login, who-am-I…), for the
    route-table check: ``dependencies=[Depends(open_route("login"))]``."""

    def dependency() -> None:
        return None

    dependency.action = "open:" + reason  # type: ignore[attr-defined]
    return dependency


def api_routes(app: Any) -> list[Any]:
    """Every APIRoute of an app, through included routers (FastAPI ≥ 0.16x keeps them nested)."""
    from fastapi.routing import APIRoute

    out: list[Any] = []
    stack = list(reversed(app.routes))
    while stack:
        route = stack.pop()
        if isinstance(route, APIRoute):
            out.append(route)
        inner = getattr(route, "original_router", None)
        if inner is not None:
            stack.extend(reversed(inner.routes))
    return out


def route_policy(route: Any) -> str | None:
    """The declared policy of an APIRoute: the ``requires(action)`` / ``open_route`` it depends on, or None."""
    stack = [getattr(route, "dependant", None)]
    while stack:
        dep = stack.pop()
        if dep is None:
            continue
        action = getattr(dep.call, "action", None)
        if isinstance(action, str):
            return action
        stack.extend(dep.dependencies)
    return None


def set_session_cookies(response: Response, request: Request, session_token: str, expires: datetime,
                        settings: AuthSettings) -> str:
    """Set the session cookie (HttpOnly, SameSite=Lax, Secure over https) and the csrf cookie; the csrf value."""
    secure = request.url.scheme == "https"
    max_age = max(int((expires - datetime.now(expires.tzinfo)).total_seconds()), 0)
    csrf = tokens.csrf_token(session_token, settings)
    response.set_cookie(settings.session_cookie, session_token, max_age=max_age, path="/", httponly=True,
                        samesite="lax", secure=secure)
    response.set_cookie(settings.csrf_cookie, csrf, max_age=max_age, path="/", httponly=False,
                        samesite="lax", secure=secure)
    return csrf


def clear_session_cookies(response: Response, request: Request, settings: AuthSettings) -> None:
    """Delete both cookies."""
    secure = request.url.scheme == "https"
    for name, http_only in ((settings.session_cookie, True), (settings.csrf_cookie, False)):
        response.delete_cookie(name, path="/", httponly=http_only, samesite="lax", secure=secure)
