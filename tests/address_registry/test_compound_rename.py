"""Renaming a compound (小区更名) on the real demo registry: the members' formatted text follows in the
same transaction as new versions, the old name stays a former name, and a rebuild keeps the rename.

The service tests run in a transaction that is rolled back at the end, so the session's registry is
left as it was for the other tests (checked at the end)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from address_registry import service, store
from address_registry.geocoder import Geocoder

OLD, NEW = "三航小区", "三航新村"
WHO, WHY = "测试员", "民政部门批复小区更名"


def _compound_code(conn, name: str) -> str:
    return conn.execute(
        text("""SELECT code FROM standard_address WHERE level = 'compound' AND valid_to IS NULL
        AND status = 'active' AND components->>'compound' = :n"""),
        {"n": name},
    ).scalar_one()


def _members(conn, code: str) -> dict[str, dict]:
    rows = conn.execute(
        text("""SELECT code, version, full_text, normalized_text, changed_by, change_reason
        FROM standard_address WHERE compound_code = :c AND valid_to IS NULL AND status = 'active'
          AND level <> 'compound'"""),
        {"c": code},
    ).all()
    return {r.code: dict(r._mapping) for r in rows}


def test_rename_gives_every_member_a_new_version_in_the_same_transaction(tx):
    code = _compound_code(tx, OLD)
    before = _members(tx, code)
    assert len(before) >= 10  # the house numbers and buildings of 三航小区 (14 in the demo)
    assert all(OLD in m["full_text"] for m in before.values())
    old_version = store.current(tx, code).version

    rec = service.correct_address(tx, code, {"components": {"compound": NEW}}, WHO, WHY)

    assert rec.components["compound"] == NEW and rec.version == old_version + 1
    after = _members(tx, code)
    assert set(after) == set(before)  # nobody left or joined the compound
    for c, m in after.items():
        b = before[c]
        assert m["version"] == b["version"] + 1
        assert m["full_text"] == b["full_text"].replace(OLD, NEW) and OLD not in m["full_text"]
        assert m["normalized_text"] == b["normalized_text"]  # the identifying key does not change
        assert m["changed_by"] == WHO
        assert WHY in m["change_reason"] and OLD in m["change_reason"] and NEW in m["change_reason"]
    # the previous versions keep the old text (history)
    one = next(iter(after))
    hist = store.history(tx, one)
    assert OLD in hist[-2].formatted and hist[-2].extra["valid_to"] is not None
    assert NEW in hist[-1].formatted and hist[-1].extra["valid_to"] is None
    # /addresses/{code} of a member shows the new name (read from the stored version)
    assert store.record_to_json(store.current(tx, one))["formatted"].count(NEW) == 1


def test_old_name_stays_a_former_name_and_still_geocodes(tx):
    code = _compound_code(tx, OLD)
    service.correct_address(tx, code, {"components": {"compound": NEW}}, WHO, WHY)
    aliases = {a["alias"]: a["kind"] for a in store.aliases_of(tx, code)}
    assert aliases[OLD] == "former_name" and aliases[NEW] == "compound"
    house = tx.execute(
        text("""SELECT code, components FROM standard_address WHERE compound_code = :c
        AND valid_to IS NULL AND status = 'active' AND level = 'house_number' ORDER BY code LIMIT 1"""),
        {"c": code},
    ).one()
    geocoder = Geocoder(**store.load_geocoder_inputs(tx))
    for name in (OLD, NEW):
        top = geocoder.geocode(name, limit=1)[0]
        assert top["address_code"] == code and top["level"] == "compound"
        assert top["components"]["compound"] == NEW
    top = geocoder.geocode(f"{OLD}{house.components['road']}{house.components['house_number']}", limit=1)[0]
    assert top["address_code"] == house.code and NEW in top["formatted"]


def test_rebuild_after_a_rename_keeps_it(tx):
    """The build finds the renamed compound by its former (OSM) name: no second 三航小区 appears."""
    code = _compound_code(tx, OLD)
    service.correct_address(tx, code, {"components": {"compound": NEW}}, WHO, WHY)
    members = _members(tx, code)
    stats = service.build_registry(tx)
    assert stats.get("created", 0) == 0
    names = (
        tx.execute(
            text("""SELECT components->>'compound' FROM standard_address WHERE level = 'compound'
        AND valid_to IS NULL AND status = 'active'""")
        )
        .scalars()
        .all()
    )
    assert NEW in names and OLD not in names and len(names) == 12
    assert _members(tx, code) == members


def test_renaming_back_restores_the_name_and_keeps_both_as_aliases(tx):
    code = _compound_code(tx, OLD)
    service.correct_address(tx, code, {"components": {"compound": NEW}}, WHO, WHY)
    service.correct_address(tx, code, {"components": {"compound": OLD}}, WHO, "更名撤回")
    aliases = {a["alias"]: a["kind"] for a in store.aliases_of(tx, code)}
    assert aliases[OLD] == "compound" and aliases[NEW] == "former_name"
    assert all(OLD in m["full_text"] and NEW not in m["full_text"] for m in _members(tx, code).values())


def test_nothing_leaked_from_the_rolled_back_tests(engine, registry):
    with engine.connect() as conn:
        code = _compound_code(conn, OLD)
        assert all(OLD in m["full_text"] for m in _members(conn, code).values())
        assert {a["alias"] for a in store.aliases_of(conn, code)} == {OLD}


@pytest.mark.parametrize(("name", "status"), [("", 422), ("村", 422)])
def test_bad_compound_name_is_422_and_changes_nothing(client, engine, registry, name, status):
    with engine.connect() as conn:
        code = _compound_code(conn, OLD)
        before = _members(conn, code)
    r = client.patch(
        f"/addresses/{code}",
        json={"components": {"compound": name}, "changed_by": WHO, "reason": WHY},
    )
    assert r.status_code == status and r.json()["message"]
    with engine.connect() as conn:
        assert _members(conn, code) == before
