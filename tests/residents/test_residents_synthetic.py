"""Synthetic demo residents: reproducible, valid, consistent with the households, idempotent, marked."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from residents import service, synthetic
from residents import validate as v

DWELLINGS = [synthetic.Dwelling(f"3101150000900003001010010{i:04d}", "room", 1) for i in range(40)] + [
    synthetic.Dwelling(f"31010100001000{i:04d}", "house_number", 3) for i in range(30)]


@pytest.fixture(scope="module")
def community(engine, jurisdictions) -> str:
    """The demo community with room-level addresses and the fewest addresses (a quick, realistic sample)."""
    with engine.connect() as conn:
        code = conn.execute(text(
            "SELECT community_code FROM standard_address WHERE valid_to IS NULL AND community_code IS NOT NULL "
            "GROUP BY 1 HAVING count(*) FILTER (WHERE level = 'room') > 0 ORDER BY count(*), 1 LIMIT 1")).scalar()
    if code is None:
        pytest.skip("no community with rooms in the demo")
    return code


def _people(out):
    return [(sp.address_code, sp.person.name, sp.person.id_number, sp.person.birth_date, sp.key_groups)
            for d in out for sp in d.people]


def test_same_seed_same_people_other_seed_others():
    a = _people(synthetic.generate(DWELLINGS, seed=7))
    assert a == _people(synthetic.generate(DWELLINGS, seed=7))
    assert a != _people(synthetic.generate(DWELLINGS, seed=8))
    # a dwelling's people do not depend on the others asked for (barring a clash of ID numbers)
    first = _people(synthetic.generate(DWELLINGS[:1], seed=7))
    assert first == [p for p in a if p[0] == DWELLINGS[0].address_code]


def test_generated_records_pass_validation_and_are_marked():
    out = list(synthetic.generate(DWELLINGS, seed=7))
    people = [sp.person for d in out for sp in d.people]
    assert len(people) > 100
    numbers = [p.id_number for p in people]
    assert len(set(numbers)) == len(numbers)
    for p in people:
        assert p.source == "synthetic" and p.name
        checked = service.checked_person(synthetic.Person(**{**p.__dict__}))
        assert (checked.sex, checked.birth_date) == (p.sex, p.birth_date)
        if p.phone:
            assert p.phone.startswith("1700000") and v.phone(p.phone) == p.phone
        if p.id_type == "passport":
            assert p.nationality != "CHN" and p.name.startswith("Synthetic")
        else:
            assert p.name[0] in synthetic.SURNAMES
    for d in out:
        assert d.house.source == "synthetic" and d.house.use in ("自住", "出租", "空置")
        assert (d.house.use == "空置") == (not d.people)
        for u in d.units:
            assert v.credit_code(u.credit_code) == u.credit_code and u.name.startswith("示例")
    # every room holds one household; a lane house holds its households (unless vacant)
    per_house = {d.address_code: len({sp.person.registration for sp in d.people}) for d in out}
    assert all(n <= 1 for code, n in per_house.items() if code.startswith("31011500009"))


def test_load_is_idempotent_and_follows_the_households(rolled_back, community):
    first = service.load_synthetic(rolled_back, 7, community, batch_size=10)
    assert first["dwellings"] > 0 and first["person"] > 0 and first["skipped"] == 0
    assert first["house_info"] == first["dwellings"]
    again = service.load_synthetic(rolled_back, 7, community, batch_size=10)
    assert again["skipped"] == first["dwellings"] and again["person"] == 0 and again["house_info"] == 0
    rooms_with_two_households = rolled_back.execute(text(
        "SELECT count(*) FROM (SELECT r.address_code FROM residence r JOIN standard_address a ON a.code = "
        "r.address_code AND a.valid_to IS NULL AND a.level = 'room' JOIN person p ON p.id = r.person_id "
        "AND p.valid_to IS NULL WHERE p.source = 'synthetic' GROUP BY 1 HAVING count(*) > 5) x")).scalar()
    assert rooms_with_two_households == 0


def test_cli_demo_command(engine, community):
    from gis_api.cli import app

    try:
        res = CliRunner().invoke(app, ["residents", "demo", "--community", community, "--seed", "7"])
        assert res.exit_code == 0, res.output
        assert "synthetic" in res.output
        again = CliRunner().invoke(app, ["residents", "demo", "--community", community, "--seed", "7"])
        assert again.exit_code == 0 and "人员 people +0" in again.output
    finally:
        with engine.begin() as conn:
            for table, key in (("person_key_group", "source"), ("residence", "source"), ("person", "source"),
                               ("house_info", "source"), ("org_unit", "source")):
                conn.execute(text(f"DELETE FROM {table} WHERE {key} = 'synthetic'"))
