"""SQL of the address registry (tables `standard_address`, `address_alias`). Bound parameters only.

Every function takes a SQLAlchemy connection that is already inside a transaction; the caller owns
the unit of work (`with engine.begin() as conn:`), so a failed step leaves nothing half-written.

One module per concern, re-exported here so callers keep writing ``store.current(conn, code)``:
`rows` (row ↔ record ↔ JSON), `reading`, `writing` (versions, aliases, applying a build plan), `inputs`
(what the build and the geocoder load) and `compounds` (the SQL of compounds registered through the API).
"""

from __future__ import annotations

from address_registry.store.compounds import (
    admin_shares,
    buildings_by_id,
    compound_overlaps,
    compound_with_name,
    compounds_meeting,
    lock_serials,
    membership_candidates,
)
from address_registry.store.inputs import (
    footprint_extents,
    has_tiled_city,
    load_build_inputs,
    load_geocoder_inputs,
    road_lines_named,
)
from address_registry.store.reading import (
    active_children,
    active_code_with_text,
    admin_containing,
    admin_unit,
    aliases_of,
    all_current,
    changes_since,
    children_codes,
    compound_containing,
    compound_members,
    current,
    current_aliases,
    districts_named,
    footprint_address,
    former_names,
    grid_containing,
    has_admin_level,
    history,
    nearest,
    point_in_admin,
    search,
    stamp,
)
from address_registry.store.reverse import reverse_parts
from address_registry.store.rows import record_to_json
from address_registry.store.staging import (
    Staging,
    apply_staged,
    registry_staging,
    staging_tables,
)
from address_registry.store.writing import (
    BUILD_USER,
    add_alias,
    apply_plan,
    close_aliases,
    close_current,
    insert_version,
    replace_versions,
    same_content,
)

__all__ = [
    "BUILD_USER",
    "Staging",
    "apply_staged",
    "registry_staging",
    "staging_tables",
    "active_children",
    "active_code_with_text",
    "add_alias",
    "admin_containing",
    "admin_shares",
    "admin_unit",
    "aliases_of",
    "all_current",
    "changes_since",
    "apply_plan",
    "buildings_by_id",
    "children_codes",
    "close_aliases",
    "close_current",
    "compound_containing",
    "compound_members",
    "compound_overlaps",
    "compound_with_name",
    "compounds_meeting",
    "current",
    "current_aliases",
    "districts_named",
    "footprint_extents",
    "former_names",
    "grid_containing",
    "has_admin_level",
    "history",
    "insert_version",
    "has_tiled_city",
    "load_build_inputs",
    "load_geocoder_inputs",
    "road_lines_named",
    "lock_serials",
    "membership_candidates",
    "footprint_address",
    "nearest",
    "point_in_admin",
    "record_to_json",
    "reverse_parts",
    "replace_versions",
    "same_content",
    "search",
    "stamp",
]
