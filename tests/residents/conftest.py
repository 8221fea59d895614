"""Fixtures of the residents tests: real demo addresses (rooms of a block of flats, its building, a house
number in the first test community where the role accounts of `role_headers` are granted)."""

from __future__ import annotations

import pytest
from sqlalchemy import text


@pytest.fixture(scope="session")
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
