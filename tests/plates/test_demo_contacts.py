"""Demo grid staff (so a scanned demo plate shows whom to contact): every current grid and micro-grid gets a
synthetic, 演示-marked contact; grids with staff are left alone; a second run adds nothing."""

from __future__ import annotations

from sqlalchemy import text

from gis_api.plates import DEMO_MARK, seed_demo_contacts


def test_every_grid_gets_a_marked_contact_once(jurisdictions, rolled_back):
    conn = rolled_back
    staffed = dict(conn.execute(text("SELECT grid_code, person_ref FROM grid_staff WHERE valid_to IS NULL")).all())
    added = seed_demo_contacts(conn)
    grids = conn.execute(text("SELECT count(*) FROM grid WHERE valid_to IS NULL AND level IN ('grid', 'microgrid')"))
    n_grids = grids.scalar()
    bare = conn.execute(text(
        "SELECT count(*) FROM grid g WHERE g.valid_to IS NULL AND g.level IN ('grid', 'microgrid') AND NOT EXISTS "
        "(SELECT 1 FROM grid_staff s WHERE s.grid_code = g.code AND s.valid_to IS NULL)")).scalar()
    assert n_grids and bare == 0
    assert sum(added.values()) == n_grids - len({g for g in staffed})
    after = dict(conn.execute(text("SELECT grid_code, person_ref FROM grid_staff WHERE valid_to IS NULL "
                                   "AND grid_code = ANY(:g)"), {"g": list(staffed)}).all())
    assert all(after[g] == staffed[g] for g in staffed)  # existing staff untouched
    new = conn.execute(text("SELECT person_ref FROM grid_staff WHERE valid_to IS NULL AND NOT grid_code = ANY(:g)"),
                       {"g": list(staffed)}).scalars().all()
    assert new and all(p.endswith(DEMO_MARK) for p in new)
    assert seed_demo_contacts(conn) == {"专职网格员": 0, "微网格长": 0}
