"""Fixtures of the grid tests."""

from __future__ import annotations

import pytest
from sqlalchemy import text


def _undo_import(engine, codes: list[str]) -> None:
    """Test clean-up (later tests and test directories expect the provisional demo units): delete the
    imported units and their grids, reactivate the provisional units they retired and rebuild the grids
    of those communities."""
    from grid_builder.build import BuildConfig
    from grid_builder.service import build_all

    with engine.begin() as conn:
        retired = conn.execute(
            text(
                "SELECT code, level FROM admin_unit WHERE valid_to IS NOT NULL AND source = 'provisional' "
                "AND (properties -> 'retired' -> 'replaced_by') ?| CAST(:c AS text[])"
            ),
            {"c": codes},
        ).all()
        for table in ("grid_assignment", "grid", "street_block"):
            conn.execute(text(f"DELETE FROM {table} WHERE community_code = ANY(:c)"), {"c": codes})
        conn.execute(text("DELETE FROM admin_unit WHERE code = ANY(:c)"), {"c": codes})
        conn.execute(
            text(
                "UPDATE admin_unit SET valid_to = NULL, properties = properties - 'retired' "
                "WHERE code = ANY(:c)"
            ),
            {"c": [r.code for r in retired]},
        )
        conn.execute(
            text(
                "UPDATE grid SET flags = array_remove(flags, 'needs_rebuild') WHERE valid_to IS NULL "
                "AND 'needs_rebuild' = ANY(flags)"
            )
        )
    build_all(engine, BuildConfig(), codes=[r.code for r in retired if r.level == "community"])


@pytest.fixture
def undo_import():
    return _undo_import
