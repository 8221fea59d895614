"""Compounds (小区、院落) in the address registry, and the named land-use areas they come from.

- `landuse`: named OSM land-use areas of the demo (Tilezen `landuse` layer, tile pieces merged per OSM
  id; `label` is Tilezen's label point when it has one). Written by `shequ demo load`.
- `standard_address.level` may be `compound` (code: district + 4-digit compound serial, see
  docs/address-code.md); a compound's polygon is kept in `area` (versioned with the row).
- `standard_address.compound_code`: the compound an address lies in (an attribute, like
  `community_code`: not a tree parent).

Revision ID: 0007_compounds
Revises: 0002_addresses
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0007_compounds"
down_revision = "0002_addresses"
branch_labels = None
depends_on = None

OLD_LEVELS = "level IN ('road','house_number','building','unit','floor','room')"
NEW_LEVELS = "level IN ('road','compound','house_number','building','unit','floor','room')"


def upgrade() -> None:
    op.create_table(
        "landuse",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("osm_id", sa.BigInteger, nullable=False, unique=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("label", Geometry("POINT", srid=4326, spatial_index=False)),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False),
    )
    op.create_index("ix_landuse_geom", "landuse", ["geom"], postgresql_using="gist")

    op.add_column("standard_address", sa.Column("compound_code", sa.String(32)))
    op.add_column(
        "standard_address", sa.Column("area", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False))
    )
    op.drop_constraint("ck_standard_address_level", "standard_address", type_="check")
    op.create_check_constraint("ck_standard_address_level", "standard_address", sa.text(NEW_LEVELS))
    op.create_index(
        "ix_standard_address_compound",
        "standard_address",
        ["compound_code"],
        postgresql_where=sa.text("valid_to IS NULL"),
    )
    op.create_index(
        "ix_standard_address_area",
        "standard_address",
        ["area"],
        postgresql_using="gist",
        postgresql_where=sa.text("valid_to IS NULL AND status = 'active' AND area IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_standard_address_area", "standard_address")
    op.drop_index("ix_standard_address_compound", "standard_address")
    op.execute(
        "DELETE FROM address_alias WHERE address_code IN "
        "(SELECT code FROM standard_address WHERE level = 'compound')"
    )
    op.execute("DELETE FROM standard_address WHERE level = 'compound'")
    op.drop_constraint("ck_standard_address_level", "standard_address", type_="check")
    op.create_check_constraint("ck_standard_address_level", "standard_address", sa.text(OLD_LEVELS))
    op.drop_column("standard_address", "area")
    op.drop_column("standard_address", "compound_code")
    op.drop_table("landuse")
