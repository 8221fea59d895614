"""`shequ user|key|audit|police-area` through the real command line app (typer's CliRunner)."""

from __future__ import annotations

import hashlib
import json
import re
import stat

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from gis_api.auth import store
from gis_api.cli import app

PW = "Lang-Shan-2026"


@pytest.fixture
def run(engine, cleanup):
    runner = CliRunner()

    def _run(*args, input=None):
        return runner.invoke(app, list(args), input=input)

    return _run


def test_user_add_list_disable_reset_grant(run, engine, tmp_path):
    res = run("user", "add", "t-cli", "--role", "planner", "--display-name", "赵规划", "--phone", "13912345678",
              "--generate")
    assert res.exit_code == 0, res.output
    generated = re.search(r"password \(shown once\): (\S+)", res.output).group(1)
    with engine.begin() as conn:
        assert store.authenticate(conn, "t-cli", generated)
        assert generated not in json.dumps(store.get_user(conn, "t-cli"), default=str)
    res = run("user", "add", "t-cli2", "--role", "community", "--password-stdin", input=PW + "\n")
    assert res.exit_code == 0 and PW not in res.output
    res = run("user", "add", "t-cli3", "--role", "planner", input=PW + "\n" + PW + "\n")  # hidden prompt, twice
    assert res.exit_code == 0, res.output
    weak = run("user", "add", "t-cli4", "--role", "planner", "--password-stdin", input="short\n")
    assert weak.exit_code == 1 and "[weak_password]" in weak.output
    dup = run("user", "add", "t-cli", "--role", "planner", "--generate")
    assert dup.exit_code == 1 and "[user_exists]" in dup.output

    listing = run("user", "list")
    assert listing.exit_code == 0 and "t-cli\tplanner" in listing.output
    assert "139****5678" in listing.output and "13912345678" not in listing.output

    assert run("user", "disable", "t-cli").exit_code == 0
    with engine.begin() as conn, pytest.raises(store.LoginFailed):
        store.authenticate(conn, "t-cli", generated)
    assert run("user", "enable", "t-cli").exit_code == 0
    assert run("user", "reset-password", "t-cli", "--password-stdin", input="New-Pass-2026!\n").exit_code == 0
    with engine.begin() as conn:
        assert store.authenticate(conn, "t-cli", "New-Pass-2026!")
    assert run("user", "disable", "t-nobody").exit_code == 1

    # police areas: import, grant to an officer
    fc = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"code": "T-PA-CLI", "name": "测试派出所 test station"},
        "geometry": {"type": "Polygon", "coordinates": [[[121.48, 31.23], [121.50, 31.23], [121.50, 31.25],
                                                         [121.48, 31.25], [121.48, 31.23]]]}}]}
    path = tmp_path / "pa.geojson"
    path.write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")
    res = run("police-area", "import", str(path))
    assert res.exit_code == 0 and "created 1" in res.output, res.output
    assert "T-PA-CLI" in run("police-area", "list").output
    assert run("user", "add", "t-cop", "--role", "police", "--grant", "police_area:T-PA-CLI", "--generate").exit_code == 0
    assert run("user", "grant", "t-cli2", "police_area:T-PA-CLI").exit_code == 1  # community staff: wrong kind
    res = run("user", "grant", "t-cop", "police_area:T-PA-CLI", "--revoke")
    assert res.exit_code == 0 and "revoked" in res.output
    with engine.connect() as conn:
        assert store.list_audit(conn, record_id="user:t-cop", action="account.revoke_grant", limit=1)
        assert store.list_audit(conn, record_id="user:t-cli", action="account.create", limit=1)[0]["actor"].startswith("cli:")


def test_key_create_list_revoke(run, engine):
    res = run("key", "create", "--name", "t-cli-key", "--scope", "geocode", "--scope", "tiles:read",
              "--expires-days", "30", "--rate", "120")
    assert res.exit_code == 0, res.output
    plain = re.search(r"(sk_[0-9a-f]{12}_\S+)", res.output).group(1)
    key_id = plain.split("_")[1]
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT key_hash FROM api_key WHERE id = :i"), {"i": key_id}).scalar_one()
        principal, rate = store.key_principal(conn, plain)
    assert stored == hashlib.sha256(plain.encode()).hexdigest() and rate == 120
    assert principal.scopes == {"geocode", "tiles:read"}
    listing = run("key", "list")
    assert key_id in listing.output and plain not in listing.output and "active" in listing.output
    assert run("key", "create", "--name", "t-x", "--scope", "root").exit_code == 1
    assert run("key", "revoke", key_id).exit_code == 0
    assert "revoked" in run("key", "list").output
    assert run("key", "revoke", "ffffffffffff").exit_code == 1


def test_audit_verify_names_the_broken_entry(run, engine):
    ok = run("audit", "verify")
    assert ok.exit_code == 0 and "intact" in ok.output, ok.output
    with engine.connect() as conn:
        last = conn.execute(text("SELECT id, actor FROM audit_log ORDER BY id DESC LIMIT 1")).one()
    # tamper for real (committed), check, and put it back
    try:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
            conn.execute(text("UPDATE audit_log SET actor = 'forged' WHERE id = :i"), {"i": last.id})
            conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))
        bad = run("audit", "verify")
        assert bad.exit_code == 1 and f"entry {last.id}" in bad.output
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
            conn.execute(text("UPDATE audit_log SET actor = :a WHERE id = :i"), {"a": last.actor, "i": last.id})
            conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))
    assert run("audit", "verify").exit_code == 0


def test_bootstrap_command(run, engine, tmp_path, monkeypatch):
    monkeypatch.setenv("SHEQU_SECRETS_DIR", str(tmp_path / "secrets"))
    monkeypatch.delenv("SHEQU_DEMO", raising=False)
    with engine.connect() as conn:
        had_admin = store.admin_exists(conn)
    try:
        res = run("user", "bootstrap")
        assert res.exit_code == 0, res.output
        assert "demo mode: 关闭 off" in res.output
        if not had_admin:  # first run in this database: the admin was made, its password file is owner-only
            path = tmp_path / "secrets" / "admin-password"
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert re.search(r"password (\S+)", res.output).group(1) in path.read_text()
        assert "an admin account exists" in run("user", "bootstrap").output
    finally:
        if not had_admin:  # leave the shared database as it was
            with engine.begin() as conn:
                conn.execute(text("DELETE FROM app_user WHERE name = 'admin' AND created_by = 'bootstrap'"))
