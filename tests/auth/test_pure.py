"""Pure parts: passwords, secrets files, roles and actions, classification, masking, tokens, rate limits."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from geo.errors import InvalidInput, NotAuthenticated, PermissionDenied, RateLimited
from gis_api.auth import classification as cls
from gis_api.auth import masking, passwords, ratelimit, secrets, tokens
from gis_api.auth import roles as r
from gis_api.errors import status_and_code

# ---- passwords


def test_argon2id_hash_verify_rehash():
    h = passwords.hash_password("correct horse battery")
    assert h.startswith("$argon2id$")
    assert passwords.verify_password(h, "correct horse battery")
    assert not passwords.verify_password(h, "correct horse batterY")
    assert not passwords.verify_password(None, "x") and not passwords.verify_password("garbage", "x")
    assert not passwords.needs_rehash(h)
    weak = "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHRzYWx0$0fcCeU1z0jaFJ7CbbTd5Bw"
    assert passwords.needs_rehash(weak)


@pytest.mark.parametrize("pw", ["short", "zhangsan1234", "ZhangSan", "aaaaaaaaaaaa", "x" * 2000])
def test_password_policy_refuses(pw):
    with pytest.raises(InvalidInput) as info:
        passwords.check_policy(pw, "zhangsan")
    assert status_and_code(info.value) == (422, "weak_password")
    assert any("\u4e00" <= ch <= "\u9fff" for ch in info.value.message)  # Chinese + English message


def test_password_policy_accepts_and_generates():
    passwords.check_policy("Liang-Shan-42!", "zhangsan")
    pw = passwords.generate_password()
    assert len(pw) >= 20
    passwords.check_policy(pw, "admin")


# ---- secrets


def test_secret_files_owner_only_and_stable(auth_settings):
    a = secrets.load_or_create("jwt", auth_settings)
    b = secrets.load_or_create("jwt", auth_settings)
    assert a == b and len(a) == 32
    folder = auth_settings.secrets_dir
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "jwt").stat().st_mode) == 0o600
    assert [p.name for p in folder.iterdir()] == ["jwt"]  # no temp file left behind
    os.chmod(folder / "jwt", 0o644)
    secrets.load_or_create("jwt", auth_settings)
    assert stat.S_IMODE((folder / "jwt").stat().st_mode) == 0o600
    with pytest.raises(InvalidInput):
        secrets.load_or_create("../escape", auth_settings)
    p = secrets.write_once("once", "first", auth_settings)
    assert p is not None and secrets.write_once("once", "second", auth_settings) is None
    assert p.read_text() == "first"


# ---- roles and actions


STREET = r.Principal(role=r.STREET, name="s", user_id=1, jurisdictions=(("township", "310101002"),))
COMMUNITY = r.Principal(role=r.COMMUNITY, name="c", user_id=2, jurisdictions=(("community", "310101002001"),))
GRID = r.Principal(role=r.GRID_MANAGER, name="g", user_id=3, jurisdictions=(("grid", "G1"), ("grid", "G2")))
KEY = r.Principal(role=r.SYSTEM, name="k", key_id="abcdefabcdef", scopes=frozenset({"geocode", "addresses:write"}))
HERE = {"township": "310101002", "community": "310101002001", "grid": "G1"}
THERE = {"township": "310101007", "community": "310101007003", "grid": "G9"}


def test_action_table_decisions():
    assert r.can(r.ANONYMOUS, "geocode") and r.can(r.ANONYMOUS, "features:read")
    assert not r.can(r.ANONYMOUS, "features:read_internal") and not r.can(r.ANONYMOUS, "addresses:write")
    assert r.can(COMMUNITY, "addresses:write", HERE) and not r.can(COMMUNITY, "addresses:write", THERE)
    assert r.can(STREET, "addresses:write", HERE) and not r.can(STREET, "addresses:write", THERE)
    assert r.can(GRID, "grids:staff", HERE) and not r.can(GRID, "grids:staff", THERE)
    assert not r.can(GRID, "addresses:write", HERE)  # not its role at all
    assert r.can(r.Principal(role=r.ADMIN, name="a"), "addresses:write", THERE)
    assert r.can(KEY, "geocode") and r.can(KEY, "addresses:write", THERE)
    assert not r.can(KEY, "tiles:read") and not r.can(KEY, "audit:read")  # scope missing
    assert not r.can(r.Principal(role=r.ADMIN, name="a"), "no:such:action")


def test_require_says_401_or_403_without_hints():
    with pytest.raises(NotAuthenticated):
        r.require(r.ANONYMOUS, "audit:read")
    with pytest.raises(PermissionDenied) as info:
        r.require(COMMUNITY, "audit:read")
    assert info.value.message == r.DENIED
    with pytest.raises(PermissionDenied) as info:
        r.require(COMMUNITY, "addresses:write", THERE)
    assert "310101007" not in info.value.message and info.value.detail is None
    assert r.require(COMMUNITY, "addresses:write", HERE) is COMMUNITY
    assert r.jurisdiction_filter(COMMUNITY, "addresses:write") == {"community": frozenset({"310101002001"})}
    assert r.jurisdiction_filter(r.Principal(role=r.ADMIN), "addresses:write") is None


def test_principal_is_frozen_and_anonymous_is_public():
    assert not r.ANONYMOUS.is_authenticated and r.ANONYMOUS.role == r.PUBLIC
    assert GRID.codes("grid") == {"G1", "G2"} and KEY.actor == "key:abcdefabcdef"
    with pytest.raises(AttributeError):
        GRID.role = r.ADMIN  # type: ignore[misc]


# ---- classification


def test_every_registry_layer_is_classified():
    from layers import registry

    missing = [layer.id for layer in registry.all_layers() if cls.row("layer:" + layer.id) is None]
    assert not missing, f"layers without a classification row: {missing}"
    assert cls.row("layer:" + registry.BASEMAP_ID) is not None


def test_classification_rows_are_complete():
    for row in cls.CLASSIFICATION:
        assert row.grounds and row.title
        if row.kind == "field" and row.level >= cls.SENSITIVE:
            assert row.mask in masking.MASKERS
            assert r.PUBLIC not in row.clear_roles
            assert len(row.clear_roles) <= 4, f"{row.key}: clear reads are for few roles"
    for key in ("person.name", "person.phone", "person.id_number", "app_user.contact_phone",
                "grid_staff.person_ref", "standard_address.room_level"):
        assert cls.row(key) is not None
    assert cls.level_of("standard_address.room_level") == cls.INTERNAL
    assert cls.level_of("person.id_number") == cls.RESTRICTED
    assert cls.level_of("nowhere.nothing") == cls.RESTRICTED


def test_public_layers_as_the_issue_lists_them():
    for layer in ("water", "railway", "road", "building", "poi", "compound", "admin_district", "admin_township",
                  "admin_community", "grid", "standard_address", "basemap"):
        assert cls.may_read_layer(r.PUBLIC, layer), layer
    for layer in ("camera", "standard_address_history", "microgrid"):
        assert not cls.may_read_layer(r.PUBLIC, layer) and cls.may_read_layer(r.COMMUNITY, layer)


def test_staff_layers_of_the_registry_are_at_least_internal():
    from layers import registry

    for layer in registry.all_layers():
        if layer.read_role != "public":
            assert cls.layer_level(layer.id) >= cls.INTERNAL, layer.id


def test_max_level_and_clear_roles():
    assert cls.max_level(r.PUBLIC) == cls.PUBLIC
    assert all(cls.max_level(role) == cls.INTERNAL for role in r.STAFF_ROLES)
    assert cls.clear_read_roles("person.id_number") == {r.ADMIN, r.POLICE}
    assert r.PUBLIC not in cls.clear_read_roles("app_user.contact_phone")
    assert r.PUBLIC in cls.clear_read_roles("layer:road")


# ---- masking


@pytest.mark.parametrize(("given", "masked"), [("张三", "张*"), ("张三丰", "张*丰"), ("欧阳娜娜", "欧**娜"),
                                                ("李", "*"), ("阿依古丽·买买提", "阿**丽·买*提"), (None, None)])
def test_mask_name(given, masked):
    assert masking.mask_name(given) == masked


@pytest.mark.parametrize(("given", "masked"), [
    ("13912345678", "139****5678"), ("139 1234 5678", "139****5678"), ("+86 139-1234-5678", "+86 139****5678"),
    ("021-63211234", "021-****1234"), ("02163211234", "021-****1234"), ("0571-88881234", "0571-****1234"),
    ("63211234", "****1234"), ("021-63211234转801", "021-****1234"),
])
def test_mask_phone(given, masked):
    assert masking.mask_phone(given) == masked


def test_mask_id_numbers_and_addresses():
    assert masking.mask_id_number("310101199001011234") == "310101********1234"
    assert masking.mask_id_number("31010119900101123x") == "310101********123X"
    assert masking.mask_id_number("310101900101123") == "310101******123"
    assert masking.mask_address("世纪大道1号3号楼2单元1201室") == "世纪大道1号3号楼****"
    assert masking.mask_address("世纪大道1号") == "世纪大道1号"


def test_mask_record_by_role():
    rec = {"id": 7, "name": "张三丰", "phone": "13912345678", "id_number": "310101199001011234", "note": "x"}
    fields = {"name": "person.name", "phone": "person.phone", "id_number": "person.id_number",
              "note": cls.SENSITIVE}
    police = r.Principal(role=r.POLICE, name="p")
    out, clear = masking.mask_record(rec, fields, police)
    assert out["id_number"] == "310101199001011234" and out["name"] == "张三丰"
    assert sorted(clear) == ["id_number", "name", "phone"] and out["note"] == "***"
    out, clear = masking.mask_record(rec, fields, COMMUNITY)
    assert out["name"] == "张三丰" and out["id_number"] == "310101********1234" and clear == ["name", "phone"]
    out, clear = masking.mask_record(rec, fields, COMMUNITY, in_jurisdiction=False)
    assert out["name"] == "张*丰" and out["phone"] == "139****5678" and clear == []
    out, clear = masking.mask_record(rec, fields, GRID)
    assert out["name"] == "张*丰" and clear == []
    out, clear = masking.mask_record(rec, fields, r.ANONYMOUS)
    assert set(out) == {"id"} and clear == []
    assert rec["name"] == "张三丰"  # the input is not changed


# ---- tokens


def test_access_token_valid_expired_tampered_foreign(auth_settings):
    secret = b"k" * 32
    tok, lifetime = tokens.issue_access_token("user:5", "li", r.COMMUNITY, auth_settings, secret)
    assert lifetime == 15 * 60
    claims = tokens.decode_access_token(tok, auth_settings, secret)
    assert claims["sub"] == "user:5" and claims["role"] == r.COMMUNITY and claims["jti"]
    later = datetime.now(UTC) + timedelta(minutes=16)
    with pytest.raises(NotAuthenticated) as info:
        tokens.decode_access_token(tok, auth_settings, secret, now=later)
    assert info.value.code == "token_expired"
    old, _ = tokens.issue_access_token("user:5", "li", r.COMMUNITY, auth_settings, secret,
                                       now=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(NotAuthenticated) as info:
        tokens.decode_access_token(old, auth_settings, secret)
    assert info.value.code == "token_expired"
    head, body, sig = tok.split(".")
    forged = jwt.encode({**claims, "role": r.ADMIN}, b"other" * 8, algorithm="HS256").split(".")[1]
    for bad in (f"{head}.{forged}.{sig}", tok[:-2] + ("AA" if tok[-2:] != "AA" else "BB"), "not-a-token"):
        with pytest.raises(NotAuthenticated) as info:
            tokens.decode_access_token(bad, auth_settings, secret)
        assert info.value.code == "token_invalid"
    with pytest.raises(NotAuthenticated):
        tokens.decode_access_token(tok, auth_settings, b"w" * 32)  # wrong secret
    none_alg = jwt.encode({**claims}, None, algorithm="none")
    with pytest.raises(NotAuthenticated):
        tokens.decode_access_token(none_alg, auth_settings, secret)


def test_api_key_format_and_hash():
    key_id, plain, digest = tokens.new_api_key()
    assert plain.startswith(f"sk_{key_id}_") and tokens.parse_api_key(plain) == key_id
    assert tokens.key_matches(plain, digest) and not tokens.key_matches(plain + "x", digest)
    assert len(digest) == 64 and plain not in digest
    for bad in ("", "sk_short_x", "Bearer abc", f"sk_{key_id}"):
        with pytest.raises(NotAuthenticated):
            tokens.parse_api_key(bad)


def test_csrf_token_bound_to_session(auth_settings):
    a = tokens.csrf_token("session-a", auth_settings)
    assert tokens.csrf_ok("session-a", a, a, auth_settings)
    assert not tokens.csrf_ok("session-a", a, None, auth_settings)
    b = tokens.csrf_token("session-b", auth_settings)
    assert not tokens.csrf_ok("session-a", b, b, auth_settings)  # a planted pair of another session


# ---- rate limits


def test_token_bucket_limits_and_refills():
    now = [1000.0]
    lim = ratelimit.RateLimiter(clock=lambda: now[0])
    for _ in range(3):
        lim.take("k", 3)
    with pytest.raises(RateLimited) as info:
        lim.take("k", 3)
    assert status_and_code(info.value)[0] == 429 and "3" in info.value.message
    assert info.value.detail["limit_per_min"] == 3
    lim.take("other", 3)  # buckets are per key
    now[0] += 20.0  # one token back at 3/min
    lim.take("k", 3)
    with pytest.raises(RateLimited):
        lim.take("k", 3)


def test_token_bucket_is_thread_safe():
    import threading

    lim = ratelimit.RateLimiter(clock=lambda: 0.0)
    ok: list[int] = []
    errors: list[int] = []

    def worker():
        for _ in range(50):
            try:
                lim.take("k", 100)
                ok.append(1)
            except RateLimited:
                errors.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ok) == 100 and len(errors) == 300
