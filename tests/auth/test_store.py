"""Accounts in PostGIS: users, lockout, API keys, police areas, the audit chain, bootstrap (rolled back)."""

from __future__ import annotations

import hashlib
import json
import stat
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from geo.errors import Conflict, InvalidInput, NotAuthenticated, NotFound
from gis_api.auth import audit, bootstrap, store
from gis_api.auth import roles as r

PW = "Lang-Shan-2026"


def test_create_user_hashes_and_refuses_duplicates(tx):
    u = store.create_user(tx, "t-li", r.COMMUNITY, PW, "李四", "13912345678", "外滩社区居委会")
    assert u["password_hash"].startswith("$argon2id$") and PW not in u["password_hash"]
    with pytest.raises(Conflict):
        store.create_user(tx, "T-LI", r.STREET, PW)
    with pytest.raises(InvalidInput):
        store.create_user(tx, "t-bad", "superuser", PW)
    with pytest.raises(InvalidInput):
        store.create_user(tx, "t-weak", r.PLANNER, "short")
    with pytest.raises(InvalidInput):
        store.create_user(tx, "t bad name", r.PLANNER, PW)


def test_login_lockout_and_unlock_after_the_time(tx, auth_settings):
    store.create_user(tx, "t-lock", r.PLANNER, PW)
    t0 = datetime.now(UTC)
    assert store.authenticate(tx, "t-lock", PW, auth_settings, now=t0)["name"] == "t-lock"
    for i in range(auth_settings.lockout_after):
        with pytest.raises(store.LoginFailed) as info:
            store.authenticate(tx, "t-lock", "wrong-password-1", auth_settings, now=t0 + timedelta(seconds=i))
    assert info.value.reason == "wrong_password_locked"
    # locked: even the right password is refused, with the same message as a wrong one or no user at all
    with pytest.raises(store.LoginFailed) as locked:
        store.authenticate(tx, "t-lock", PW, auth_settings, now=t0 + timedelta(minutes=5))
    with pytest.raises(store.LoginFailed) as nobody:
        store.authenticate(tx, "t-nobody", PW, auth_settings, now=t0)
    assert locked.value.reason == "locked" and nobody.value.reason == "no_such_user"
    assert locked.value.message == nobody.value.message == info.value.message
    assert "t-lock" not in locked.value.message
    # after the lock: the right password works and resets the count
    after = t0 + timedelta(minutes=auth_settings.lockout_minutes, seconds=10)
    assert store.authenticate(tx, "t-lock", PW, auth_settings, now=after)["failed_attempts"] == 0
    row = tx.execute(text("SELECT failed_attempts, locked_until FROM app_user WHERE name = 't-lock'")).one()
    assert row.failed_attempts == 0 and row.locked_until is None


def test_back_off_doubles_after_the_first_lock(tx, auth_settings):
    store.create_user(tx, "t-back", r.PLANNER, PW)
    t0 = datetime.now(UTC)
    for i in range(auth_settings.lockout_after):
        with pytest.raises(store.LoginFailed):
            store.authenticate(tx, "t-back", "wrong-password-1", auth_settings, now=t0 + timedelta(seconds=i))
    t1 = t0 + timedelta(minutes=16)
    with pytest.raises(store.LoginFailed) as info:  # one more failure after the lock: locked twice as long
        store.authenticate(tx, "t-back", "wrong-password-1", auth_settings, now=t1)
    assert info.value.reason == "wrong_password_locked"
    until = tx.execute(text("SELECT locked_until FROM app_user WHERE name = 't-back'")).scalar_one()
    assert until - t1 == timedelta(minutes=30)


def test_disabled_accounts_cannot_log_in(tx, auth_settings):
    store.create_user(tx, "t-off", r.PLANNER, PW)
    store.set_disabled(tx, "t-off")
    with pytest.raises(store.LoginFailed) as info:
        store.authenticate(tx, "t-off", PW, auth_settings)
    assert info.value.reason == "disabled"
    store.set_disabled(tx, "t-off", False)
    store.set_password(tx, "t-off", "Another-Pass-77")
    assert store.authenticate(tx, "t-off", "Another-Pass-77", auth_settings)


def test_grants_must_exist_and_fit_the_role(tx):
    store.create_user(tx, "t-cop", r.POLICE, PW)
    with pytest.raises(NotFound):
        store.grant(tx, "t-cop", "police_area", "T-NOPE")
    with pytest.raises(InvalidInput):
        store.grant(tx, "t-cop", "planet", "earth")
    fc = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"code": "T-PA-1", "name": "测试派出所 test station"},
        "geometry": {"type": "Polygon", "coordinates": [[[121.48, 31.23], [121.50, 31.23], [121.50, 31.25],
                                                         [121.48, 31.25], [121.48, 31.23]]]}}]}
    assert store.import_police_areas(tx, fc) == {"created": 1, "updated": 0}
    assert store.import_police_areas(tx, fc) == {"created": 0, "updated": 1}
    assert store.grant(tx, "t-cop", "police_area", "T-PA-1") and not store.grant(tx, "t-cop", "police_area", "T-PA-1")
    district = tx.execute(text("SELECT code FROM admin_unit WHERE level = 'district' LIMIT 1")).scalar_one()
    with pytest.raises((InvalidInput, NotFound)):
        store.grant(tx, "t-cop", "township", district)
    user = store.get_user(tx, "t-cop")
    p = store.principal_for(tx, user, "password")
    assert p.jurisdictions == (("police_area", "T-PA-1"),)
    assert store.police_areas_at(tx, 121.49, 31.24) == ["T-PA-1"]
    target = {"police_area": store.police_areas_at(tx, 121.49, 31.24)}
    assert r.can(p, "grids:read") and r.within(p, target)
    assert not r.within(p, {"police_area": store.police_areas_at(tx, 121.40, 31.24)})
    bad = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"code": "T-PA-2", "name": "x"},
           "geometry": {"type": "Point", "coordinates": [121.49, 31.24]}}]}
    with pytest.raises(InvalidInput):
        store.import_police_areas(tx, bad)


def test_api_keys_hash_only_revoked_expired(tx):
    row, plain = store.create_api_key(tx, "t-key", ["geocode", "features:read"], "t-admin", rate_per_min=5)
    stored = tx.execute(text("SELECT key_hash FROM api_key WHERE id = :i"), {"i": row["id"]}).scalar_one()
    assert stored == hashlib.sha256(plain.encode()).hexdigest()
    assert plain not in json.dumps(store.list_api_keys(tx), default=str)
    p, rate = store.key_principal(tx, plain)
    assert p.role == r.SYSTEM and p.scopes == {"geocode", "features:read"} and rate == 5
    assert r.can(p, "geocode") and not r.can(p, "addresses:write")
    with pytest.raises(NotAuthenticated):
        store.key_principal(tx, plain[:-3] + "abc")
    with pytest.raises(InvalidInput):
        store.create_api_key(tx, "t-key2", ["everything"], "t-admin")
    assert store.revoke_api_key(tx, row["id"]) and not store.revoke_api_key(tx, row["id"])
    with pytest.raises(NotAuthenticated) as info:
        store.key_principal(tx, plain)
    assert info.value.code == "api_key_revoked"
    row2, plain2 = store.create_api_key(tx, "t-key3", ["geocode"], "t-admin",
                                        expires_at=datetime.now(UTC) + timedelta(days=1))
    store.key_principal(tx, plain2)
    with pytest.raises(NotAuthenticated) as info:
        store.key_principal(tx, plain2, now=datetime.now(UTC) + timedelta(days=2))
    assert info.value.code == "api_key_expired"


# ---- audit chain


def _append(conn, n: int, tag: str) -> list[int]:
    p = r.Principal(role=r.COMMUNITY, name=f"t-{tag}", user_id=1)
    ids = []
    for i in range(n):
        row = audit.append(conn, audit.AuditEntry.of(
            p, "address.patch", ip="10.0.0.1", request_id=f"req-{tag}-{i}", endpoint="PATCH /addresses/X",
            record_ids=[f"addr:{tag}{i}"], before={"full_text": "旧 old", "n": 1.5, "big": 1e20},
            after={"full_text": "新 new", "when": datetime(2026, 1, 2, tzinfo=UTC), "n": 2}))
        ids.append(row["id"])
    return ids


def test_audit_append_verify_and_tamper(tx):
    ids = _append(tx, 3, "a")
    assert audit.verify(tx) is None
    rows = store.list_audit(tx, record_id="addr:a1")
    assert len(rows) == 1 and rows[0]["before"]["full_text"] == "旧 old" and rows[0]["ip"] == "10.0.0.1"
    # tamper with the middle entry as the table owner, bypassing the append-only trigger
    tx.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
    tx.execute(text("UPDATE audit_log SET after = jsonb_set(after, '{full_text}', '\"改 forged\"') WHERE id = :i"),
               {"i": ids[1]})
    assert audit.verify(tx) == ids[1]
    # a forger who also recomputes that entry's hash breaks the next entry's link
    forged = dict(tx.execute(text("SELECT * FROM audit_log WHERE id = :i"), {"i": ids[1]}).mappings().one())
    tx.execute(text("UPDATE audit_log SET hash = :h WHERE id = :i"),
               {"h": audit.entry_hash(forged, forged["prev_hash"]), "i": ids[1]})
    assert audit.first_break(tx)[0] == ids[2]


def test_audit_log_refuses_update_and_delete(tx):
    (entry_id,) = _append(tx, 1, "b")
    for sql in ("UPDATE audit_log SET actor = 'x' WHERE id = :i", "DELETE FROM audit_log WHERE id = :i",
                "TRUNCATE audit_log"):
        sp = tx.begin_nested()
        with pytest.raises(DBAPIError) as info:
            tx.execute(text(sql), {"i": entry_id})
        assert "append-only" in str(info.value)
        sp.rollback()
    assert audit.verify(tx) is None


def test_concurrent_appends_keep_one_chain(engine):
    def worker(tag):
        with engine.begin() as conn:
            _append(conn, 4, tag)

    threads = [threading.Thread(target=worker, args=(f"c{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with engine.connect() as conn:
        assert audit.verify(conn) is None
        assert len(store.list_audit(conn, action="address.*", limit=500)) >= 16


# ---- bootstrap


def test_ensure_admin_writes_an_owner_only_password_file(tx, auth_settings):
    tx.execute(text("DELETE FROM app_user"))  # rolled back with the test
    password = bootstrap.ensure_admin(tx, auth_settings)
    assert password
    path = auth_settings.secrets_dir / bootstrap.ADMIN_PASSWORD_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(auth_settings.secrets_dir.stat().st_mode) == 0o700
    assert password in path.read_text()
    assert store.authenticate(tx, "admin", password, auth_settings)["role"] == r.ADMIN
    assert bootstrap.ensure_admin(tx, auth_settings) is None  # an admin exists: nothing done
    assert store.list_audit(tx, action="account.bootstrap_admin", limit=1)


def test_demo_accounts_only_in_demo_mode(tx, auth_settings):
    tx.execute(text("DELETE FROM app_user WHERE name LIKE 'demo-%'"))
    off = bootstrap.ensure_demo_accounts(tx, auth_settings)
    assert not off.created and off.notes
    assert not tx.execute(text("SELECT 1 FROM app_user WHERE name LIKE 'demo-%'")).first()
    # a township, community and grid as the demo pipeline makes them (rolled back with the test)
    square = "ST_Multi(ST_GeomFromText('POLYGON((121.48 31.23,121.49 31.23,121.49 31.24,121.48 31.24,121.48 31.23))',4326))"
    district = tx.execute(text("SELECT code FROM admin_unit WHERE level = 'district' AND geom IS NOT NULL "
                               "ORDER BY code LIMIT 1")).scalar_one()
    tx.execute(text(f"INSERT INTO admin_unit (code, name, level, parent_code, source, geom) VALUES "
                    f"('{district}990', '测试街道', 'township', :d, 'provisional', {square}), "
                    f"('{district}990001', '测试社区', 'community', '{district}990', 'provisional', {square})"),
               {"d": district})
    tx.execute(text(f"INSERT INTO grid (code, name, level, parent_code, community_code, area_m2, compactness, "
                    f"contiguous, geom) VALUES ('{district}990001G01', '测试网格', 'grid', '{district}990001', "
                    f"'{district}990001', 1e6, 0.8, true, {square})"))
    demo = bootstrap.ensure_demo_accounts(tx, auth_settings.model_copy(update={"demo": True}))
    roles = {a.role: a for a in demo.created}
    assert set(roles) == {*r.USER_ROLES, r.SYSTEM}
    for role in r.USER_ROLES:
        user = store.get_user(tx, roles[role].name)
        assert user["display_name"].startswith(bootstrap.DEMO_LABEL) and user["role"] == role
        assert store.authenticate(tx, user["name"], roles[role].secret, auth_settings)
    kinds = {role: a.jurisdiction[0] for role, a in roles.items() if a.jurisdiction}
    assert kinds == {r.STREET: "township", r.COMMUNITY: "community", r.GRID_MANAGER: "grid",
                     r.POLICE: "police_area"}
    township = roles[r.STREET].jurisdiction[1]
    community = roles[r.COMMUNITY].jurisdiction[1]
    assert tx.execute(text("SELECT parent_code FROM admin_unit WHERE code = :c"), {"c": community}).scalar() == township
    same = tx.execute(text("SELECT ST_Equals(p.geom, a.geom) FROM police_area p, admin_unit a WHERE p.code = :p "
                           "AND a.code = :t"), {"p": roles[r.POLICE].jurisdiction[1], "t": township}).scalar()
    assert same
    path = auth_settings.secrets_dir / bootstrap.DEMO_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and roles[r.PLANNER].secret in path.read_text()
    again = bootstrap.ensure_demo_accounts(tx, auth_settings.model_copy(update={"demo": True}))
    assert not again.created


def test_startup_refuses_a_public_bind_without_accounts(tx, auth_settings):
    from geo.errors import Unavailable

    assert bootstrap.is_loopback("127.0.0.1") and bootstrap.is_loopback("::1") and bootstrap.is_loopback("localhost")
    assert not bootstrap.is_loopback("0.0.0.0") and not bootstrap.is_loopback("gis.example.cn")
    tx.execute(text("DELETE FROM app_user"))
    assert "demo mode off" in bootstrap.startup_check(tx, auth_settings, "127.0.0.1")[0]
    with pytest.raises(Unavailable) as info:
        bootstrap.startup_check(tx, auth_settings, "0.0.0.0")
    assert "shequ user bootstrap" in info.value.message
    bootstrap.ensure_admin(tx, auth_settings)
    lines = bootstrap.startup_check(tx, auth_settings.model_copy(update={"demo": True}), "0.0.0.0")
    assert "demo mode ON" in lines[0]
