"""The auth router through the real app: token flow, cookie login/logout with CSRF, /auth/me, /audit."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gis_api.auth import audit, store
from gis_api.auth import roles as r

PW = "Lang-Shan-2026"


@pytest.fixture
def accounts(engine, cleanup, app_auth):
    with engine.begin() as conn:
        store.create_user(conn, "t-admin", r.ADMIN, PW, "王管理", "13912345678", "区大数据中心")
        store.create_user(conn, "t-comm", r.COMMUNITY, PW, "李社区", "021-63211234", "外滩社区居委会")
    return {"admin": "t-admin", "community": "t-comm"}


@pytest.fixture
def web(app):
    """A client of its own (its own cookie jar; no lifespan, so the session's engine stays open)."""
    return TestClient(app)


def _token(web, name, password=PW):
    return web.post("/auth/token", data={"username": name, "password": password})


def test_token_flow_and_me(web, accounts):
    res = _token(web, "t-comm")
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 15 * 60
    me = web.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert me["name"] == "t-comm" and me["role"] == r.COMMUNITY and me["method"] == "token"
    assert me["contact"]["phone"] == "021-****1234"
    anon = web.get("/auth/me").json()
    assert anon["role"] == "public" and not anon["authenticated"]
    bad = web.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token'][:-4]}AAAA"})
    assert bad.status_code == 401 and bad.json()["error"] == "token_invalid"
    assert web.get("/auth/me", headers={"Authorization": "Basic abc"}).status_code == 401


def test_wrong_password_is_401_and_audited(web, accounts, engine):
    res = _token(web, "t-comm", "wrong-password-1")
    assert res.status_code == 401 and res.json()["error"] == "login_failed"
    nobody = _token(web, "t-nobody", "wrong-password-1")
    assert nobody.status_code == 401 and nobody.json()["message"] == res.json()["message"]
    assert "用户名" in res.json()["message"] and "password" in res.json()["message"]
    with engine.connect() as conn:
        failed = store.list_audit(conn, actor="t-comm", action="auth.login", limit=5)
        assert failed[0]["outcome"] == "failed" and failed[0]["detail"]["reason"] == "wrong_password"
        assert store.list_audit(conn, actor="t-nobody", limit=1)[0]["detail"]["reason"] == "no_such_user"
        attempts = conn.execute(text("SELECT failed_attempts FROM app_user WHERE name = 't-comm'")).scalar_one()
        assert attempts == 1  # the failure was committed although the request failed


def test_lockout_through_the_api(web, accounts, app_auth):
    for _ in range(app_auth.lockout_after):
        assert _token(web, "t-comm", "wrong-password-1").status_code == 401
    assert _token(web, "t-comm").status_code == 401  # locked: the right password is refused too


def test_cookie_login_csrf_logout(web, accounts, engine, app_auth):
    res = web.post("/auth/login", json={"username": "t-comm", "password": PW})
    assert res.status_code == 200, res.text
    set_cookie = res.headers.get_list("set-cookie")
    session = next(c for c in set_cookie if c.startswith(app_auth.session_cookie + "="))
    csrf_cookie = next(c for c in set_cookie if c.startswith(app_auth.csrf_cookie + "="))
    assert "HttpOnly" in session and "samesite=lax" in session.lower() and "Secure" not in session
    assert "HttpOnly" not in csrf_cookie
    csrf = res.json()["csrf_token"]
    assert web.cookies.get(app_auth.csrf_cookie) == csrf
    me = web.get("/auth/me").json()
    assert me["name"] == "t-comm" and me["method"] == "session"
    # a write by cookie without the CSRF header is refused, and nothing is ended
    no_csrf = web.post("/auth/logout")
    assert no_csrf.status_code == 403 and no_csrf.json()["error"] == "csrf_failed"
    wrong = web.post("/auth/logout", headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403
    assert web.get("/auth/me").json()["name"] == "t-comm"
    out = web.post("/auth/logout", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 200 and out.json()["logged_out"] is True
    assert web.get("/auth/me").json()["role"] == "public"
    with engine.connect() as conn:
        live = conn.execute(text("SELECT count(*) FROM user_session s JOIN app_user u ON u.id = s.user_id "
                                 "WHERE u.name = 't-comm' AND s.revoked_at IS NULL")).scalar_one()
        assert live == 0
        assert store.list_audit(conn, actor="t-comm", action="auth.logout", limit=1)


def test_form_login_and_https_cookie_is_secure(app, accounts, app_auth):
    web = TestClient(app, base_url="https://testserver")
    res = web.post("/auth/login", data={"username": "t-comm", "password": PW})
    assert res.status_code == 200
    session = next(c for c in res.headers.get_list("set-cookie") if c.startswith(app_auth.session_cookie + "="))
    assert "Secure" in session
    assert web.post("/auth/login", json=["not", "an", "object"]).status_code == 400
    assert web.post("/auth/login", json={"username": "t-comm"}).status_code == 400


def test_disabled_user_loses_token_and_session(web, accounts, engine):
    tok = _token(web, "t-comm").json()["access_token"]
    web.post("/auth/login", json={"username": "t-comm", "password": PW})
    with engine.begin() as conn:
        store.set_disabled(conn, "t-comm")
    assert web.get("/auth/me", headers={"Authorization": f"Bearer {tok}"}).status_code == 401
    assert web.get("/auth/me").json()["role"] == "public"  # the session ended with the account


def test_audit_is_admin_only(web, accounts):
    assert web.get("/audit").status_code == 401
    comm = _token(web, "t-comm").json()["access_token"]
    res = web.get("/audit", headers={"Authorization": f"Bearer {comm}"})
    assert res.status_code == 403 and res.json()["error"] == "forbidden"
    admin = _token(web, "t-admin").json()["access_token"]
    h = {"Authorization": f"Bearer {admin}"}
    res = web.get("/audit", params={"user": "t-comm", "action": "auth.*", "limit": 5}, headers=h)
    assert res.status_code == 200, res.text
    entries = res.json()["entries"]
    assert entries and all(e["actor"] == "t-comm" and e["action"].startswith("auth.") for e in entries)
    assert len(entries[0]["hash"]) == 64
    assert web.get("/audit", params={"record_id": "user:t-admin"}, headers=h).json()["entries"]
    assert web.get("/audit", params={"limit": 501}, headers=h).status_code == 422
    assert web.get("/audit", params={"since": "not-a-time"}, headers=h).status_code == 422
    reads = web.get("/audit", params={"action": "audit.read", "user": "t-admin"}, headers=h).json()["entries"]
    assert reads  # reading the log is itself in the log


def test_api_keys_through_the_app_scope_revoke_rate(web, accounts, engine):
    with engine.begin() as conn:
        row, plain = store.create_api_key(conn, "t-app-key", ["geocode"], "t-admin", rate_per_min=3)
        _, auditor = store.create_api_key(conn, "t-audit-key", ["audit:read"], "t-admin", rate_per_min=100)
    me = web.get("/auth/me", headers={"X-API-Key": plain}).json()
    assert me["role"] == r.SYSTEM and me["scopes"] == ["geocode"] and me["key_id"] == row["id"]
    assert web.get("/audit", headers={"X-API-Key": plain}).status_code == 403  # outside its scopes
    assert web.get("/audit", params={"limit": 1}, headers={"X-API-Key": auditor}).status_code == 200
    assert web.get("/auth/me", headers={"X-API-Key": plain}).status_code == 200  # the third of 3 a minute
    limited = web.get("/auth/me", headers={"X-API-Key": plain})
    assert limited.status_code == 429 and "3" in limited.json()["message"]
    with engine.begin() as conn:
        store.revoke_api_key(conn, row["id"])
    res = web.get("/auth/me", headers={"X-API-Key": plain})
    assert res.status_code == 401 and res.json()["error"] == "api_key_revoked"
    assert web.get("/auth/me", headers={"X-API-Key": "sk_nothing"}).status_code == 401


def test_the_chain_still_verifies(engine, accounts):
    with engine.connect() as conn:
        assert audit.verify(conn) is None


def test_every_auth_route_declares_its_policy(app):
    """The route-table check, on this router's routes (the wiring step extends it to every route)."""
    from gis_api.auth.deps import api_routes, route_policy

    mine = [rt for rt in api_routes(app) if rt.path.startswith(("/auth", "/audit"))]
    assert len(mine) == 5
    policies = {rt.path: route_policy(rt) for rt in mine}
    assert all(policies.values()), policies
    assert policies["/audit"] == "audit:read" and policies["/auth/login"] == "open:login"
