"""The SQL of accounts: users, grants, sessions, API keys, police-station areas, login, audit queries.

SQLAlchemy Core ``text()`` with bound parameters only. Every function takes the caller's connection
(inside the caller's transaction); nothing here commits.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection

from geo.errors import Conflict, InvalidInput, NotAuthenticated, NotFound

from . import passwords, principal_cache, tokens
from . import roles as r
from .settings import AuthSettings

LOGIN_FAILED = ("登录失败：用户名或密码错误，或账户已锁定、已停用 "
                "login failed: wrong user name or password, or the account is locked or disabled")
SESSION_INVALID = "会话无效或已过期，请重新登录 session invalid or expired, log in again"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$")
_USER_COLS = ("id, name, display_name, role, password_hash, disabled, failed_attempts, locked_until, "
              "last_login_at, contact_phone, contact_office, created_by, created_at, updated_at, version")


class LoginFailed(NotAuthenticated):
    """A refused login (401, one message for every cause); ``reason`` is for the audit log only."""

    def __init__(self, reason: str):
        super().__init__(LOGIN_FAILED, code="login_failed")
        self.reason = reason


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


# ---------------------------------------------------------------- users


def _changed(conn: Connection) -> None:
    """Accounts, grants, sessions or keys changed: forget cached principals now and when this commits."""
    principal_cache.clear()
    if not event.contains(conn, "commit", _clear_on_commit):
        event.listen(conn, "commit", _clear_on_commit)


def _clear_on_commit(_conn: Connection) -> None:
    principal_cache.clear()


def check_user_name(name: str) -> str:
    """A valid login name (2–64 of letters, digits, _ . @ -), or InvalidInput."""
    if not _NAME.match(name or ""):
        raise InvalidInput("用户名须为 2–64 位字母、数字或 _ . @ - the user name must be 2–64 letters, digits, _ . @ -",
                           code="invalid_user_name")
    return name


def check_role(role: str) -> str:
    """A role a person's account can hold, or InvalidInput."""
    if role not in r.USER_ROLES:
        raise InvalidInput(f"未知角色 unknown role: {role!r}; one of {', '.join(r.USER_ROLES)}", code="invalid_role")
    return role


def create_user(
    conn: Connection,
    name: str,
    role: str,
    password: str,
    display_name: str | None = None,
    contact_phone: str | None = None,
    contact_office: str | None = None,
    created_by: str = "system",
) -> dict[str, Any]:
    """Create an account (password checked by the policy, stored as argon2id); Conflict when the name is taken."""
    check_user_name(name)
    check_role(role)
    passwords.check_policy(password, name)
    row = conn.execute(
        text(
            "INSERT INTO app_user (name, display_name, role, password_hash, contact_phone, contact_office, "
            "created_by) VALUES (:name, :display, :role, :hash, :phone, :office, :by) "
            f"ON CONFLICT ((lower(name))) DO NOTHING RETURNING {_USER_COLS}"
        ),
        {"name": name, "display": display_name or name, "role": role, "hash": passwords.hash_password(password),
         "phone": contact_phone, "office": contact_office, "by": created_by},
    ).mappings().first()
    if row is None:
        raise Conflict(f"用户名已存在 user name already taken: {name}", code="user_exists")
    return dict(row)


def get_user(conn: Connection, name: str, for_update: bool = False) -> dict[str, Any] | None:
    """The account of ``name`` (case-insensitive), or None."""
    lock = " FOR UPDATE" if for_update else ""
    row = conn.execute(text(f"SELECT {_USER_COLS} FROM app_user WHERE lower(name) = lower(:n){lock}"),
                       {"n": name}).mappings().first()
    return dict(row) if row else None


def get_user_by_id(conn: Connection, user_id: int) -> dict[str, Any] | None:
    """The account with id ``user_id``, or None."""
    row = conn.execute(text(f"SELECT {_USER_COLS} FROM app_user WHERE id = :i"), {"i": user_id}).mappings().first()
    return dict(row) if row else None


def require_user(conn: Connection, name: str, for_update: bool = False) -> dict[str, Any]:
    """The account of ``name`` or NotFound."""
    user = get_user(conn, name, for_update)
    if user is None:
        raise NotFound(f"没有该用户 no such user: {name}", code="no_such_user")
    return user


def list_users(conn: Connection) -> list[dict[str, Any]]:
    """Every account with its grants, by name (no password hashes)."""
    rows = conn.execute(
        text(
            "SELECT u.id, u.name, u.display_name, u.role, u.disabled, u.locked_until, u.last_login_at, "
            "u.contact_phone, u.contact_office, u.created_at, u.version, "
            "COALESCE(array_agg(g.kind || ':' || g.code ORDER BY g.kind, g.code) "
            "FILTER (WHERE g.id IS NOT NULL), '{}') AS grants "
            "FROM app_user u LEFT JOIN user_grant g ON g.user_id = u.id GROUP BY u.id ORDER BY u.name"
        )
    ).mappings().all()
    return [dict(x) for x in rows]


def set_disabled(conn: Connection, name: str, disabled: bool = True) -> dict[str, Any]:
    """Disable (or enable) an account; disabling ends its browser sessions."""
    _changed(conn)
    user = require_user(conn, name, for_update=True)
    conn.execute(text("UPDATE app_user SET disabled = :d, updated_at = now(), version = version + 1 WHERE id = :i"),
                 {"d": disabled, "i": user["id"]})
    if disabled:
        revoke_user_sessions(conn, user["id"])
    return {**user, "disabled": disabled, "version": user["version"] + 1}


def set_password(conn: Connection, name: str, password: str) -> dict[str, Any]:
    """Set a new password (policy checked), unlock the account and end its sessions."""
    _changed(conn)
    user = require_user(conn, name, for_update=True)
    passwords.check_policy(password, user["name"])
    conn.execute(
        text("UPDATE app_user SET password_hash = :h, failed_attempts = 0, locked_until = NULL, "
             "updated_at = now(), version = version + 1 WHERE id = :i"),
        {"h": passwords.hash_password(password), "i": user["id"]},
    )
    revoke_user_sessions(conn, user["id"])
    return user


def admin_exists(conn: Connection) -> bool:
    """True when at least one enabled admin account exists."""
    return bool(conn.execute(text("SELECT EXISTS (SELECT 1 FROM app_user WHERE role = 'admin' AND NOT disabled)"))
                .scalar())


# ---------------------------------------------------------------- grants


def _grant_target_exists(conn: Connection, kind: str, code: str) -> bool:
    if kind in ("township", "community"):
        sql = "SELECT 1 FROM admin_unit WHERE code = :c AND level = :k AND valid_to IS NULL"
    elif kind == "grid":
        sql = "SELECT 1 FROM grid WHERE code = :c AND valid_to IS NULL"
    else:
        sql = "SELECT 1 FROM police_area WHERE code = :c"
    return conn.execute(text(sql), {"c": code, "k": kind}).first() is not None


def grant(conn: Connection, name: str, kind: str, code: str, granted_by: str = "system") -> bool:
    """Grant ``name`` the jurisdiction ``kind:code`` (which must exist); False when already granted."""
    _changed(conn)
    if kind not in r.JURISDICTION_KINDS:
        raise InvalidInput(f"未知辖区类型 unknown jurisdiction kind: {kind!r}; one of {', '.join(r.JURISDICTION_KINDS)}",
                           code="invalid_kind")
    user = require_user(conn, name, for_update=True)
    if not _grant_target_exists(conn, kind, code):
        raise NotFound(f"没有该辖区 no such {kind}: {code}", code="no_such_jurisdiction")
    expected = r.ROLE_JURISDICTION.get(user["role"])
    if expected is not None and expected != kind:
        raise InvalidInput(f"角色 {user['role']} 的辖区应为 {expected} role {user['role']} is granted {expected} codes",
                           code="invalid_kind")
    row = conn.execute(
        text("INSERT INTO user_grant (user_id, kind, code, granted_by) VALUES (:u, :k, :c, :b) "
             "ON CONFLICT (user_id, kind, code) DO NOTHING RETURNING id"),
        {"u": user["id"], "k": kind, "c": code, "b": granted_by},
    ).first()
    return row is not None


def revoke_grant(conn: Connection, name: str, kind: str, code: str) -> bool:
    """Take a jurisdiction away; False when it was not granted."""
    _changed(conn)
    user = require_user(conn, name, for_update=True)
    row = conn.execute(text("DELETE FROM user_grant WHERE user_id = :u AND kind = :k AND code = :c RETURNING id"),
                       {"u": user["id"], "k": kind, "c": code}).first()
    return row is not None


def grants_of(conn: Connection, user_id: int) -> tuple[tuple[str, str], ...]:
    """(kind, code) grants of an account, sorted."""
    rows = conn.execute(text("SELECT kind, code FROM user_grant WHERE user_id = :u ORDER BY kind, code"),
                        {"u": user_id}).all()
    return tuple((k, c) for k, c in rows)


def principal_for(conn: Connection, user: dict[str, Any], method: str) -> r.Principal:
    """The Principal of an account row."""
    return r.Principal(role=user["role"], name=user["name"], user_id=user["id"], display_name=user["display_name"],
                       jurisdictions=grants_of(conn, user["id"]), method=method)


# ---------------------------------------------------------------- login


def _lock_length(settings: AuthSettings, failures: int) -> timedelta:
    doublings = min(max(failures - settings.lockout_after, 0), 4)
    return timedelta(minutes=settings.lockout_minutes * (2 ** doublings))


def authenticate(
    conn: Connection, name: str, password: str, settings: AuthSettings | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """The account when ``password`` is right and it is enabled and not locked; else LoginFailed (401).

    After ``lockout_after`` failures in a row the account locks for ``lockout_minutes``; every further
    failure locks it again, twice as long (up to 16×); a success resets the count. Attempts while locked
    are refused without checking the password and without counting. The message never says which it was.
    """
    settings = settings or AuthSettings()
    now = _now(now)
    user = get_user(conn, name, for_update=True) if name and _NAME.match(name) else None
    if user is None:
        passwords.burn_time(password or "")
        raise LoginFailed("no_such_user")
    if user["disabled"]:
        passwords.burn_time(password or "")
        raise LoginFailed("disabled")
    if user["locked_until"] is not None and user["locked_until"] > now:
        passwords.burn_time(password or "")
        raise LoginFailed("locked")
    if not passwords.verify_password(user["password_hash"], password or ""):
        failures = user["failed_attempts"] + 1
        locked = now + _lock_length(settings, failures) if failures >= settings.lockout_after else None
        conn.execute(text("UPDATE app_user SET failed_attempts = :f, locked_until = :l WHERE id = :i"),
                     {"f": failures, "l": locked, "i": user["id"]})
        raise LoginFailed("wrong_password_locked" if locked else "wrong_password")
    new_hash = passwords.hash_password(password) if passwords.needs_rehash(user["password_hash"]) else None
    conn.execute(
        text("UPDATE app_user SET failed_attempts = 0, locked_until = NULL, last_login_at = :now, "
             "password_hash = COALESCE(:h, password_hash) WHERE id = :i"),
        {"now": now, "h": new_hash, "i": user["id"]},
    )
    return {**user, "failed_attempts": 0, "locked_until": None, "last_login_at": now}


def active_user(conn: Connection, user_id: int) -> dict[str, Any]:
    """An enabled account by id (for a bearer token's subject); else NotAuthenticated."""
    user = get_user_by_id(conn, user_id)
    if user is None or user["disabled"]:
        raise NotAuthenticated(tokens.TOKEN_INVALID, code="token_invalid")
    return user


# ---------------------------------------------------------------- sessions


def create_session(conn: Connection, user_id: int, settings: AuthSettings | None = None,
                   ip: str | None = None, user_agent: str | None = None) -> tuple[str, datetime]:
    """A new browser session: (the cookie value, shown once, and its expiry)."""
    settings = settings or AuthSettings()
    plain, digest = tokens.new_session_token()
    expires = datetime.now(UTC) + timedelta(hours=settings.session_hours)
    conn.execute(
        text("INSERT INTO user_session (id_hash, user_id, expires_at, ip, user_agent) "
             "VALUES (:h, :u, :e, :ip, :ua)"),
        {"h": digest, "u": user_id, "e": expires, "ip": ip, "ua": (user_agent or "")[:300]},
    )
    return plain, expires


def session_user(conn: Connection, plain: str, now: datetime | None = None) -> dict[str, Any]:
    """The enabled account of a live session cookie; else NotAuthenticated."""
    row = conn.execute(
        text(f"SELECT {', '.join('u.' + c.strip() for c in _USER_COLS.split(','))} FROM user_session s "
             "JOIN app_user u ON u.id = s.user_id WHERE s.id_hash = :h AND s.revoked_at IS NULL "
             "AND s.expires_at > :now AND NOT u.disabled"),
        {"h": tokens.sha256_hex(plain), "now": _now(now)},
    ).mappings().first()
    if row is None:
        raise NotAuthenticated(SESSION_INVALID, code="session_invalid")
    return dict(row)


def revoke_session(conn: Connection, plain: str) -> bool:
    """End one session; False when it was not live."""
    _changed(conn)
    row = conn.execute(text("UPDATE user_session SET revoked_at = now() WHERE id_hash = :h AND revoked_at IS NULL "
                            "RETURNING user_id"), {"h": tokens.sha256_hex(plain)}).first()
    return row is not None


def revoke_user_sessions(conn: Connection, user_id: int) -> int:
    """End every live session of an account; how many."""
    _changed(conn)
    return conn.execute(text("UPDATE user_session SET revoked_at = now() WHERE user_id = :u AND revoked_at IS NULL"),
                        {"u": user_id}).rowcount


# ---------------------------------------------------------------- API keys


def check_scopes(scopes: list[str] | tuple[str, ...]) -> list[str]:
    """Known scopes, sorted and unique; InvalidInput names the unknown ones."""
    unknown = sorted(set(scopes) - set(r.SCOPES))
    if unknown:
        raise InvalidInput(f"未知权限范围 unknown scope(s): {', '.join(unknown)}; known: {', '.join(r.SCOPES)}",
                           code="invalid_scope")
    if not scopes:
        raise InvalidInput("至少需要一个权限范围 at least one scope is needed", code="invalid_scope")
    return sorted(set(scopes))


def create_api_key(
    conn: Connection,
    name: str,
    scopes: list[str] | tuple[str, ...],
    created_by: str,
    expires_at: datetime | None = None,
    rate_per_min: int = 600,
) -> tuple[dict[str, Any], str]:
    """A new key: (its row, the key itself, to show once; only its SHA-256 is stored)."""
    if rate_per_min < 1:
        raise InvalidInput("速率限制须为正数 the rate limit must be positive", code="invalid_rate")
    key_id, plain, digest = tokens.new_api_key()
    row = conn.execute(
        text("INSERT INTO api_key (id, key_hash, name, scopes, expires_at, rate_per_min, created_by) "
             "VALUES (:i, :h, :n, :s, :e, :r, :b) "
             "RETURNING id, name, scopes, expires_at, rate_per_min, revoked_at, created_by, created_at"),
        {"i": key_id, "h": digest, "n": name, "s": check_scopes(scopes), "e": expires_at, "r": rate_per_min,
         "b": created_by},
    ).mappings().one()
    return dict(row), plain


def list_api_keys(conn: Connection) -> list[dict[str, Any]]:
    """Every key (never its hash), newest first."""
    rows = conn.execute(text("SELECT id, name, scopes, expires_at, rate_per_min, revoked_at, created_by, created_at "
                             "FROM api_key ORDER BY created_at DESC, id")).mappings().all()
    return [dict(x) for x in rows]


def revoke_api_key(conn: Connection, key_id: str) -> bool:
    """Revoke a key; NotFound when unknown, False when already revoked."""
    _changed(conn)
    row = conn.execute(text("SELECT revoked_at FROM api_key WHERE id = :i FOR UPDATE"), {"i": key_id}).first()
    if row is None:
        raise NotFound(f"没有该 API 密钥 no such API key: {key_id}", code="no_such_key")
    if row.revoked_at is not None:
        return False
    conn.execute(text("UPDATE api_key SET revoked_at = now() WHERE id = :i"), {"i": key_id})
    return True


def key_principal(conn: Connection, plain: str, now: datetime | None = None) -> tuple[r.Principal, int]:
    """The Principal (role system, the key's scopes) and rate limit of a presented key; else 401."""
    key_id = tokens.parse_api_key(plain)
    row = conn.execute(text("SELECT id, key_hash, name, scopes, expires_at, rate_per_min, revoked_at "
                            "FROM api_key WHERE id = :i"), {"i": key_id}).mappings().first()
    if row is None or not tokens.key_matches(plain, row["key_hash"]):
        raise NotAuthenticated(tokens.KEY_INVALID, code="invalid_api_key")
    if row["revoked_at"] is not None:
        raise NotAuthenticated("API 密钥已撤销 API key revoked", code="api_key_revoked")
    if row["expires_at"] is not None and row["expires_at"] <= _now(now):
        raise NotAuthenticated("API 密钥已过期 API key expired", code="api_key_expired")
    principal = r.Principal(role=r.SYSTEM, name=row["name"], key_id=row["id"], display_name=row["name"],
                            scopes=frozenset(row["scopes"]), method="api_key")
    return principal, int(row["rate_per_min"])


# ---------------------------------------------------------------- police-station areas


def _police_feature(feature: dict[str, Any], code_field: str, name_field: str, crs: str) -> tuple[str, str, str, dict]:
    from shapely.geometry import shape

    from geo.crs import check_in_china, geometry_to_wgs84
    from geo.geometry import repaired_multipolygon

    props = dict(feature.get("properties") or {})
    code, name = props.get(code_field), props.get(name_field)
    if not code or not name:
        raise InvalidInput(f"每个要素需要属性 {code_field} 与 {name_field} every feature needs {code_field} and "
                           f"{name_field} properties", code="invalid_police_area")
    try:
        geom = repaired_multipolygon(geometry_to_wgs84(shape(feature["geometry"]), crs))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidInput(f"派出所辖区 {code} 的几何无效 invalid geometry: {exc}", code="invalid_police_area") from exc
    if geom is None:
        raise InvalidInput(f"派出所辖区 {code} 须为面 must be a polygon", code="invalid_police_area")
    pt = geom.representative_point()
    check_in_china(pt.x, pt.y)
    return str(code), str(name), geom.wkb_hex, props


def import_police_areas(
    conn: Connection, collection: dict[str, Any], code_field: str = "code", name_field: str = "name",
    crs: str = "wgs84", source: str = "import",
) -> dict[str, int]:
    """Insert or replace police-station areas (派出所辖区) from a GeoJSON FeatureCollection; counts."""
    features = collection.get("features") if isinstance(collection, dict) else None
    if not features:
        raise InvalidInput("需要含要素的 GeoJSON FeatureCollection a GeoJSON FeatureCollection with features is needed",
                           code="invalid_police_area")
    parsed = [_police_feature(f, code_field, name_field, crs) for f in features]
    if len({p[0] for p in parsed}) != len(parsed):
        raise InvalidInput("文件中派出所辖区代码重复 duplicate police area codes in the file", code="invalid_police_area")
    created = updated = 0
    for code, name, wkb, props in parsed:
        inserted = conn.execute(
            text("INSERT INTO police_area (code, name, source, properties, geom) VALUES (:c, :n, :s, "
                 "CAST(:p AS jsonb), ST_SetSRID(ST_GeomFromWKB(decode(:g, 'hex')), 4326)) "
                 "ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, source = EXCLUDED.source, "
                 "properties = EXCLUDED.properties, geom = EXCLUDED.geom, updated_at = now(), "
                 "version = police_area.version + 1 RETURNING (xmax = 0) AS inserted"),
            {"c": code, "n": name, "s": source, "p": _json(props), "g": wkb},
        ).scalar_one()
        created += bool(inserted)
        updated += not inserted
    return {"created": created, "updated": updated}


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, default=str)


def police_areas_at(conn: Connection, lon: float, lat: float) -> list[str]:
    """Codes of the police-station areas containing a WGS84 point (for a record's jurisdiction target)."""
    rows = conn.execute(text("SELECT code FROM police_area WHERE ST_Intersects(geom, ST_SetSRID(ST_Point(:x, :y), "
                             "4326)) ORDER BY code"), {"x": lon, "y": lat}).all()
    return [c for (c,) in rows]


def list_police_areas(conn: Connection) -> list[dict[str, Any]]:
    """Every police-station area (code, name, source, version, area in km²)."""
    rows = conn.execute(text("SELECT code, name, source, version, round((ST_Area(geom::geography) / 1e6)::numeric, 3) "
                             "AS area_km2 FROM police_area ORDER BY code")).mappings().all()
    return [dict(x) for x in rows]


# ---------------------------------------------------------------- audit queries

MAX_AUDIT_PAGE = 500
MAX_AUDIT_OFFSET = 100_000


def list_audit(
    conn: Connection,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    record_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Audit entries matching the filters, newest first (action: exact, or a prefix ending in ``*``)."""
    if not (1 <= limit <= MAX_AUDIT_PAGE) or not (0 <= offset <= MAX_AUDIT_OFFSET):
        raise InvalidInput(f"limit 须在 1–{MAX_AUDIT_PAGE}，offset 须在 0–{MAX_AUDIT_OFFSET} "
                           f"limit must be 1–{MAX_AUDIT_PAGE}, offset 0–{MAX_AUDIT_OFFSET}", code="invalid_paging")
    where: list[str] = ["TRUE"]
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if actor:
        where.append("actor = :actor")
        params["actor"] = actor
    if action:
        if action.endswith("*"):
            where.append("action LIKE :action")
            params["action"] = action[:-1].replace("%", r"\%").replace("_", r"\_") + "%"
        else:
            where.append("action = :action")
            params["action"] = action
    if since:
        where.append("at >= :since")
        params["since"] = since
    if until:
        where.append("at < :until")
        params["until"] = until
    if record_id:
        where.append(":rid = ANY(record_ids)")
        params["rid"] = record_id
    rows = conn.execute(
        text("SELECT id, at, actor, actor_role, ip, request_id, action, endpoint, record_ids, before, after, "
             f"outcome, detail, prev_hash, hash FROM audit_log WHERE {' AND '.join(where)} "
             "ORDER BY id DESC LIMIT :limit OFFSET :offset"),
        params,
    ).mappings().all()
    return [dict(x) for x in rows]


def get_police_area(conn: Connection, code: str) -> dict[str, Any]:
    """One police-station area as a GeoJSON Feature (lon/lat) with code, name, source and version (404)."""
    import json

    r = conn.execute(text("SELECT code, name, source, version, ST_AsGeoJSON(geom, 8) AS g FROM police_area "
                          "WHERE code = :c"), {"c": code}).mappings().first()
    if r is None:
        raise NotFound(f"没有代码为 {code} 的派出所辖区 no police area {code}", code="police_area_not_found")
    return {"type": "Feature", "id": r["code"], "geometry": json.loads(r["g"]),
            "properties": {k: r[k] for k in ("code", "name", "source", "version")}}


def reshape_police_area(conn: Connection, code: str, geometry: dict[str, Any], base_version: int | None = None,
                        crs: str = "wgs84") -> dict[str, Any]:
    """A stored police-station area gets a new outline (checked like an import: a valid polygon in China),
    version + 1, ``source = 'edit'``; 412 when ``base_version`` is not the current version (edited by
    someone else meanwhile), 404 for an unknown code."""
    from geo.errors import StaleVersion

    now = conn.execute(text("SELECT name, version FROM police_area WHERE code = :c FOR UPDATE"), {"c": code}).first()
    if now is None:
        raise NotFound(f"没有代码为 {code} 的派出所辖区 no police area {code}", code="police_area_not_found")
    if base_version is not None and int(base_version) != int(now.version):
        raise StaleVersion(f"辖区 {code} 已被修改（当前第 {now.version} 版，编辑基于第 {base_version} 版），请重新载入 "
                           f"police area {code} changed meanwhile (version {now.version}, edited {base_version})",
                           code="stale_version")
    _c, _n, wkb, _p = _police_feature({"geometry": geometry, "properties": {"code": code, "name": now.name}},
                                      "code", "name", crs)
    conn.execute(text("UPDATE police_area SET geom = ST_SetSRID(ST_GeomFromWKB(decode(:g, 'hex')), 4326), "
                      "source = 'edit', updated_at = now(), version = version + 1 WHERE code = :c"),
                 {"c": code, "g": wkb})
    return get_police_area(conn, code)
