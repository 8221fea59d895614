"""SQL of the grid builder (SQLAlchemy Core ``text()`` with bound parameters only), one module per part.

Reads the base layers into plain records for the pure core (`base_layers`), and writes provisional
townships and communities and retires the ones a city's own boundaries replace (`admin_units`), grids /
micro-grids (versioned), street blocks and building assignments (`grids`), grid staff (`staff`) and H3
cells (`h3`). Every write function expects a connection inside a transaction owned by the caller.

This module is the face: ``from grid_builder import store; store.buildings_in(conn, area)``.
"""

from __future__ import annotations

from geo.pg import has_column, has_table
from grid_builder.store.admin_units import (
    buildings_outside_active_communities,
    close_replaced_grids,
    communities_needing_build,
    current_grid_counts,
    provisional_coverage,
    replace_provisional_units,
    retire_admin_units,
    unit_issues,
    upsert_admin_unit,
)
from grid_builder.store.base_layers import (
    admin_unit,
    admin_units,
    building_extent,
    buildings_in,
    districts_with_buildings,
    household_source,
    rails_in,
    roads_in,
    water_in,
)
from grid_builder.store.grids import (
    AreaRow,
    community_rows,
    get_grid,
    grid_assignments,
    grid_history,
    grid_stats,
    list_grids,
    locate,
    rebuild_reason,
    write_community_build,
)
from grid_builder.store.h3 import area_geometry, located_things, read_h3_cells, write_h3_cells
from grid_builder.store.staff import close_staff, current_staff_for_update, insert_staff, staff_of

__all__ = [
    "AreaRow",
    "admin_unit",
    "admin_units",
    "area_geometry",
    "building_extent",
    "buildings_in",
    "buildings_outside_active_communities",
    "close_replaced_grids",
    "close_staff",
    "communities_needing_build",
    "community_rows",
    "current_grid_counts",
    "current_staff_for_update",
    "districts_with_buildings",
    "get_grid",
    "grid_assignments",
    "grid_history",
    "grid_stats",
    "has_column",
    "has_table",
    "household_source",
    "insert_staff",
    "list_grids",
    "locate",
    "located_things",
    "provisional_coverage",
    "rails_in",
    "read_h3_cells",
    "rebuild_reason",
    "replace_provisional_units",
    "retire_admin_units",
    "roads_in",
    "staff_of",
    "unit_issues",
    "upsert_admin_unit",
    "water_in",
    "write_community_build",
    "write_h3_cells",
]
