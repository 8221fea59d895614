"""Log in and out, who am I, and the audit log (admins).

`POST /auth/token` (OAuth2 password form → a short-lived bearer token, for scripts), `POST /auth/login`
(JSON or form → HttpOnly session cookie + csrf cookie, for the map page), `POST /auth/logout`,
`GET /auth/me`, `GET /audit` (admin only, filters and paging). Every login success and failure is
written to the audit chain, committed before the response is sent.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from geo.errors import BadRequest
from gis_api.auth import audit, masking, store, tokens
from gis_api.auth import roles as r
from gis_api.auth.deps import (
    audit_fields,
    auth_settings,
    clear_session_cookies,
    current_principal,
    forget_credentials,
    open_route,
    requires,
    set_session_cookies,
)
from gis_api.params import IsoDatetime

router = APIRouter(tags=["auth 账户与审计"])

MAX_CREDENTIAL = 1024


def _login(request: Request, name: str, password: str, method: str) -> tuple[r.Principal, dict[str, Any]]:
    """Authenticate and audit in one committed transaction; a refusal is committed too, then raised."""
    settings = auth_settings(request)
    fields = audit_fields(request)
    failure: store.LoginFailed | None = None
    extra: dict[str, Any] = {}
    with request.app.state.engine.begin() as conn:
        try:
            user = store.authenticate(conn, name, password, settings)
        except store.LoginFailed as exc:
            failure = exc
            audit.append(conn, audit.AuditEntry(action="auth.login", actor=(name or "?")[:64], actor_role=r.PUBLIC,
                                                outcome="failed", detail={"reason": exc.reason, "method": method},
                                                **fields))
        else:
            principal = store.principal_for(conn, user, method)
            if method == "session":
                token, expires = store.create_session(conn, user["id"], settings, fields["ip"],
                                                      request.headers.get("user-agent"))
                extra = {"session_token": token, "expires": expires}
            audit.append(conn, audit.AuditEntry.of(principal, "auth.login", record_ids=[f"user:{user['name']}"],
                                                   detail={"method": method}, **fields))
    if failure is not None:
        raise failure
    return principal, extra


def _credentials(name: Any, password: Any) -> tuple[str, str]:
    if not isinstance(name, str) or not isinstance(password, str) or not name or not password:
        raise BadRequest("需要用户名和密码 user name and password are required", code="missing_credentials")
    if len(name) > MAX_CREDENTIAL or len(password) > MAX_CREDENTIAL:
        raise BadRequest("用户名或密码过长 user name or password too long", code="missing_credentials")
    return name, password


class PasswordForm(BaseModel):
    """The OAuth2 password form (RFC 6749 §4.3) with its real constraints: FastAPI's own
    ``OAuth2PasswordRequestForm`` declares an empty user name valid and then refuses it as missing."""

    grant_type: Literal["password"] = Field("password", description="password")
    username: str = Field(..., min_length=1, max_length=128, description="用户名 user name")
    password: str = Field(..., min_length=1, max_length=1024, description="密码 password")
    scope: str = Field("", max_length=1024, description="（未用）unused")


@router.post("/auth/token", dependencies=[Depends(open_route("login"))], summary="令牌登录（OAuth2 密码模式，供脚本使用）token login for scripts")
def token(request: Request, form: Annotated[PasswordForm, Form()]) -> dict[str, Any]:
    """A short-lived bearer access token for a user name and password."""
    name, password = _credentials(form.username, form.password)
    principal, _ = _login(request, name, password, "token")
    settings = auth_settings(request)
    access, lifetime = tokens.issue_access_token(f"user:{principal.user_id}", principal.name, principal.role,
                                                 settings)
    return {"access_token": access, "token_type": "bearer", "expires_in": lifetime}


@router.post("/auth/login", dependencies=[Depends(open_route("login"))], summary="浏览器登录（会话 Cookie）browser login: session cookie")
async def login(request: Request, response: Response) -> dict[str, Any]:
    """Log in with JSON ``{"username", "password"}`` or a form; sets the session and csrf cookies."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        try:
            body = await request.json()
        except ValueError as exc:
            raise BadRequest("请求体不是有效的 JSON invalid JSON body", code="invalid_json") from exc
        if not isinstance(body, dict):
            raise BadRequest("请求体须为 JSON 对象 the body must be a JSON object", code="invalid_json")
    else:
        body = dict(await request.form())
    name, password = _credentials(body.get("username", body.get("name")), body.get("password"))
    principal, extra = await run_in_threadpool(_login, request, name, password, "session")
    settings = auth_settings(request)
    csrf = set_session_cookies(response, request, extra["session_token"], extra["expires"], settings)
    return {"user": principal.public_dict(), "csrf_token": csrf, "expires_at": extra["expires"].isoformat()}


@router.post("/auth/logout", dependencies=[Depends(open_route("logout"))], summary="退出登录 log out")
def logout(request: Request, response: Response, principal: r.Principal = Depends(current_principal)) -> dict:
    """End the browser session (CSRF-checked like every cookie write) and clear the cookies."""
    settings = auth_settings(request)
    cookie = request.cookies.get(settings.session_cookie)
    ended = False
    if cookie and principal.method == "session":
        with request.app.state.engine.begin() as conn:
            ended = store.revoke_session(conn, cookie)
            audit.append(conn, audit.AuditEntry.of(principal, "auth.logout", record_ids=[f"user:{principal.name}"],
                                                   **audit_fields(request)))
    forget_credentials(request)
    clear_session_cookies(response, request, settings)
    return {"logged_out": ended}


@router.get("/auth/me", dependencies=[Depends(open_route("self"))], summary="当前身份 who am I")
def me(request: Request, principal: r.Principal = Depends(current_principal)) -> dict[str, Any]:
    """The caller: role, jurisdictions, scopes, own contact details masked (anonymous: role public)."""
    out = principal.public_dict()
    if principal.user_id is not None:
        with request.app.state.engine.connect() as conn:
            user = store.get_user_by_id(conn, principal.user_id) or {}
        out["contact"] = {"phone": masking.mask_phone(user.get("contact_phone")),
                          "office": user.get("contact_office")}
    if principal.key_id is not None:
        out["key_id"] = principal.key_id
    return out


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "at": row["at"].isoformat(), "prev_hash": row["prev_hash"].strip(), "hash": row["hash"].strip()}


@router.get("/audit", summary="审计日志（仅管理员）audit log, admins only")
def audit_log(
    request: Request,
    principal: r.Principal = Depends(requires("audit:read")),
    user: str | None = Query(None, max_length=128, description="操作人（用户名或 key:<id>）actor"),
    action: str | None = Query(None, max_length=64, description="操作，如 auth.login 或 auth.*"),
    since: IsoDatetime | None = Query(None, description="起始时间（含） from (inclusive)"),
    until: IsoDatetime | None = Query(None, description="截止时间（不含） until (exclusive)"),
    record_id: str | None = Query(None, max_length=128, description="记录编号，如 user:admin"),
    limit: int = Query(100, ge=1, le=store.MAX_AUDIT_PAGE),
    offset: int = Query(0, ge=0, le=store.MAX_AUDIT_OFFSET),
) -> dict[str, Any]:
    """Audit entries, newest first; reading the log is itself recorded (committed before the answer)."""
    filters = {"user": user, "action": action, "since": since, "until": until, "record_id": record_id,
               "limit": limit, "offset": offset}
    with request.app.state.engine.begin() as conn:
        rows = store.list_audit(conn, user, action, since, until, record_id, limit, offset)
        audit.append(conn, audit.AuditEntry.of(principal, "audit.read", detail={"filters": filters},
                                               **audit_fields(request)))
    return {
        "entries": [_entry(x) for x in rows],
        "numberReturned": len(rows),
        "next_offset": offset + limit if len(rows) == limit else None,
    }
