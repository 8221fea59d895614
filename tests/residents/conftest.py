"""Fixtures of the residents tests: real demo addresses (rooms of a block of flats, its building, a house
number in the first test community where the role accounts of `role_headers` are granted)."""

from __future__ import annotations

import pytest
from sqlalchemy import text


@pytest.fixture(scope="module")
def demo_addresses(engine, jurisdictions) -> dict[str, str]:
    """``room`` and ``other_room`` (two active rooms), ``building`` (the room's building), ``house_number``
    (inside the first test community) and ``other_house_number`` (inside the other one)."""
    with engine.connect() as conn:
        rooms = [c for (c,) in conn.execute(text(
            "SELECT code FROM standard_address WHERE level = 'room' AND valid_to IS NULL AND status = 'active' "
            "ORDER BY code LIMIT 2"))]
        if len(rooms) < 2:
            pytest.skip("no room-level addresses in the demo")
        building = conn.execute(text(
            "WITH RECURSIVE up AS (SELECT code, parent_code, level FROM standard_address WHERE code = :c "
            "AND valid_to IS NULL UNION SELECT a.code, a.parent_code, a.level FROM standard_address a "
            "JOIN up ON a.code = up.parent_code AND a.valid_to IS NULL) SELECT code FROM up WHERE level = 'building'"),
            {"c": rooms[0]}).scalar()
    return {"room": rooms[0], "other_room": rooms[1], "building": building,
            "house_number": jurisdictions["address"], "other_house_number": jurisdictions["other_address"]}


@pytest.fixture(scope="module", autouse=True)
def _grants_follow_the_address(engine, role_headers, demo_addresses):
    """Tests that ran before may have rebuilt the boundaries and grids (new codes): grant the role accounts
    the current township, community, grid and a police area of the test house number again, so the
    jurisdiction rules are tested against today's codes, not those of the session's start."""
    from gis_api.auth import store, targets

    with engine.begin() as conn:
        where = targets.address_target(conn, demo_addresses["house_number"])
        conn.execute(text("DELETE FROM user_grant WHERE user_id IN (SELECT id FROM app_user WHERE name IN "
                          "('m-street', 'm-community', 'm-grid_manager'))"))
        conn.execute(text(
            "UPDATE police_area SET geom = (SELECT ST_Multi(ST_Buffer(geom::geography, 50)::geometry) FROM "
            "standard_address WHERE code = :c AND valid_to IS NULL) WHERE code = 'M-PA-1'"),
            {"c": demo_addresses["house_number"]})
        store.grant(conn, "m-street", "township", where["township"])
        store.grant(conn, "m-community", "community", where["community"])
        if where.get("grid"):
            store.grant(conn, "m-grid_manager", "grid", where["grid"][0])
    yield
