"""Secure defaults at start-up: an admin account when none exists; demo accounts in demo mode only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from . import audit, passwords, secrets, store
from . import roles as r
from .settings import AuthSettings

ADMIN_NAME = "admin"
ADMIN_PASSWORD_FILE = "admin-password"
DEMO_FILE = "demo-accounts.txt"
DEMO_LABEL = "演示 demo"
BOOTSTRAP = r.Principal(role=r.ADMIN, name="bootstrap", method="cli")


@dataclass
class DemoAccount:
    """One demo account (or key) as created: name, role, secret shown once, its grant."""

    name: str
    role: str
    secret: str
    jurisdiction: tuple[str, str] | None = None


@dataclass
class DemoResult:
    """What ``ensure_demo_accounts`` did: accounts created, the password file, notes."""

    created: list[DemoAccount] = field(default_factory=list)
    file: str | None = None
    notes: list[str] = field(default_factory=list)


def ensure_admin(conn: Connection, settings: AuthSettings | None = None) -> str | None:
    """Create ``admin`` with a random password when no enabled admin exists; the password, else None.

    The password is written to ``secrets_dir/admin-password`` (0600, replacing an older file) so the
    operator can read it once; the CLI prints it too. Nothing is done when an admin exists.
    """
    settings = settings or AuthSettings()
    if store.admin_exists(conn):
        return None
    password = passwords.generate_password()
    existing = store.get_user(conn, ADMIN_NAME, for_update=True)
    if existing is None:
        store.create_user(conn, ADMIN_NAME, r.ADMIN, password, display_name="系统管理员 administrator",
                          created_by="bootstrap")
    else:  # an "admin" account exists but is disabled or has another role: make it the admin again
        conn.execute(text("UPDATE app_user SET role = 'admin', disabled = false, updated_at = now(), "
                          "version = version + 1 WHERE id = :i"), {"i": existing["id"]})
        store.set_password(conn, ADMIN_NAME, password)
    secrets.write_private(ADMIN_PASSWORD_FILE,
                          f"# Shequ GIS 初始管理员 initial administrator; change it: shequ user reset-password admin\n"
                          f"user: {ADMIN_NAME}\npassword: {password}\n", settings)
    audit.append(conn, audit.AuditEntry.of(BOOTSTRAP, "account.bootstrap_admin", record_ids=[f"user:{ADMIN_NAME}"],
                                           after={"name": ADMIN_NAME, "role": r.ADMIN}))
    return password


def _demo_places(conn: Connection) -> dict[str, Any]:
    """A real township, one of its communities and grids of the demo database (None where missing); a
    community that has grids is preferred, so the grid manager gets a real grid."""
    grid = conn.execute(text(
        "SELECT g.code, g.community_code FROM grid g JOIN admin_unit c ON c.code = g.community_code "
        "AND c.valid_to IS NULL AND c.geom IS NOT NULL WHERE g.level = 'grid' AND g.valid_to IS NULL "
        "ORDER BY (c.source = 'provisional') DESC, g.code LIMIT 1")).mappings().first()
    community = township = None
    if grid:
        community = conn.execute(text("SELECT code, name, parent_code FROM admin_unit WHERE code = :c"),
                                 {"c": grid["community_code"]}).mappings().first()
        township = conn.execute(text(
            "SELECT code, name FROM admin_unit WHERE code = :t AND valid_to IS NULL AND geom IS NOT NULL"),
            {"t": community["parent_code"]}).mappings().first() if community else None
    if township is None:
        grid = community = None
        township = conn.execute(text(
            "SELECT code, name FROM admin_unit WHERE level = 'township' AND valid_to IS NULL AND geom IS NOT NULL "
            "ORDER BY (source = 'provisional') DESC, code LIMIT 1")).mappings().first()
        if township:
            community = conn.execute(text(
                "SELECT code, name FROM admin_unit WHERE level = 'community' AND valid_to IS NULL "
                "AND geom IS NOT NULL AND parent_code = :t ORDER BY code LIMIT 1"),
                {"t": township["code"]}).mappings().first()
    return {"township": township, "community": community, "grid": grid}


def _demo_police_area(conn: Connection, township: Any) -> str:
    """A demo police-station area: the demo township's polygon, labelled as a demo (source 'demo')."""
    code = f"DEMO-{township['code']}"
    conn.execute(text(
        "INSERT INTO police_area (code, name, source, properties, geom) "
        "SELECT :c, :n, 'demo', jsonb_build_object('derived_from', code), ST_Multi(geom) FROM admin_unit "
        "WHERE code = :t AND valid_to IS NULL ON CONFLICT (code) DO NOTHING"),
        {"c": code, "n": f"{DEMO_LABEL} 派出所辖区 police area（{township['name']}）", "t": township["code"]})
    return code


_DEMO_ROLES = (
    (r.ADMIN, None), (r.STREET, "township"), (r.COMMUNITY, "community"),
    (r.GRID_MANAGER, "grid"), (r.POLICE, "police_area"), (r.PLANNER, None),
)


def ensure_demo_accounts(conn: Connection, settings: AuthSettings | None = None) -> DemoResult:
    """In demo mode only: one labelled account per role (``demo-<role>``) and a demo API key.

    Jurisdictions come from the demo database: its first township (a provisional one when built), a
    community and a grid in it, and a police area made from that township's polygon. Passwords (and the
    key) go to ``secrets_dir/demo-accounts.txt`` (0600). Existing demo accounts are left alone.
    """
    settings = settings or AuthSettings()
    result = DemoResult()
    if not settings.demo:
        result.notes.append("演示模式未开启 demo mode is off (SHEQU_DEMO=1 turns it on): no demo accounts")
        return result
    places = _demo_places(conn)
    codes: dict[str, str | None] = {
        "township": places["township"]["code"] if places["township"] else None,
        "community": places["community"]["code"] if places["community"] else None,
        "grid": places["grid"]["code"] if places["grid"] else None,
        "police_area": _demo_police_area(conn, places["township"]) if places["township"] else None,
    }
    for role, kind in _DEMO_ROLES:
        name = f"demo-{role.replace('_', '-')}"
        if store.get_user(conn, name) is not None:
            continue
        password = passwords.generate_password()
        title = r.ROLES[role][0]
        store.create_user(conn, name, role, password, display_name=f"{DEMO_LABEL} {title}",
                          contact_phone="13800138000", contact_office=f"{DEMO_LABEL} 办公室 office",
                          created_by="bootstrap")
        grant = None
        if kind is not None:
            if codes[kind]:
                store.grant(conn, name, kind, str(codes[kind]), granted_by="bootstrap")
                grant = (kind, str(codes[kind]))
            else:
                result.notes.append(f"{name}: 演示库中尚无{kind} no {kind} in the database yet (run shequ demo all); "
                                    "account created without a jurisdiction")
        result.created.append(DemoAccount(name, role, password, grant))
        audit.append(conn, audit.AuditEntry.of(BOOTSTRAP, "account.create", record_ids=[f"user:{name}"],
                                               after={"name": name, "role": role, "grant": grant, "demo": True}))
    if not any(k.role == r.SYSTEM for k in result.created) and not conn.execute(
            text("SELECT 1 FROM api_key WHERE name = :n"), {"n": f"{DEMO_LABEL} key"}).first():
        row, plain = store.create_api_key(conn, f"{DEMO_LABEL} key", ["geocode", "features:read", "tiles:read"],
                                          created_by="bootstrap", rate_per_min=settings.key_rate_per_min)
        result.created.append(DemoAccount(f"key:{row['id']}", r.SYSTEM, plain))
        audit.append(conn, audit.AuditEntry.of(BOOTSTRAP, "key.create", record_ids=[f"key:{row['id']}"],
                                               after={"name": row["name"], "scopes": row["scopes"], "demo": True}))
    if result.created:
        lines = [f"{a.role}\t{a.name}\t{a.secret}\t{':'.join(a.jurisdiction) if a.jurisdiction else ''}\n"
                 for a in result.created]
        path = secrets.append_private(DEMO_FILE, "# 演示账户 demo accounts (role, name, password, jurisdiction)\n"
                                      + "".join(lines), settings)
        result.file = str(path)
    return result


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    import ipaddress

    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def startup_check(conn: Connection, settings: AuthSettings, host: str) -> list[str]:
    """Lines the server prints at start (demo mode on/off); refuses a non-loopback bind with no accounts.

    Raises ``Unavailable`` (exit 1 in the CLI) naming the fix when ``host`` is not loopback and no
    enabled account exists.
    """
    from geo.errors import Unavailable

    accounts = conn.execute(text("SELECT count(*) FROM app_user WHERE NOT disabled")).scalar_one()
    if not is_loopback(host) and accounts == 0:
        raise Unavailable(
            f"拒绝在 {host} 上对外服务：尚未配置任何账户。请先运行 `shequ user bootstrap`（或 `shequ user add NAME "
            f"--role admin`），或只绑定 127.0.0.1 refusing to serve on {host} with no accounts configured: run "
            "`shequ user bootstrap` (or `shequ user add NAME --role admin`) first, or bind to 127.0.0.1",
            code="no_accounts")
    mode = ("演示模式已开启：存在演示账户，切勿用于生产 demo mode ON: demo accounts exist, not for production"
            if settings.demo else "演示模式关闭 demo mode off")
    return [mode, f"账户 accounts: {accounts}"]
