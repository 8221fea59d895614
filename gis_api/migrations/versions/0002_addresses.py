"""Standard-address registry: versioned addresses and their aliases.

Every change inserts a new version row and closes the previous one (valid_to); nothing is deleted.
The current version of an address is its row with valid_to IS NULL.

Revision ID: 0002_addresses
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0002_addresses"
down_revision = "0001_base"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "standard_address",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("level", sa.Text, nullable=False),
        sa.Column("parent_code", sa.String(32)),
        sa.Column("district_code", sa.String(12)),
        sa.Column("township_code", sa.String(12)),
        sa.Column("community_code", sa.String(12)),
        sa.Column("components", JSONB, nullable=False),
        sa.Column("full_text", sa.Text, nullable=False),
        sa.Column("normalized_text", sa.Text, nullable=False),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False)),
        sa.Column("building_id", sa.BigInteger, sa.ForeignKey("building.id", ondelete="SET NULL")),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="active"),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("valid_to", sa.DateTime(timezone=True)),
        sa.Column("changed_by", sa.Text, nullable=False),
        sa.Column("change_reason", sa.Text, nullable=False),
        sa.Column("related_codes", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.CheckConstraint("level IN ('road','house_number','building','unit','floor','room')",
                           name="ck_standard_address_level"),
        sa.CheckConstraint("source IN ('osm','generated','import','manual')", name="ck_standard_address_source"),
        sa.CheckConstraint("status IN ('active','retired')", name="ck_standard_address_status"),
        sa.UniqueConstraint("code", "version", name="uq_standard_address_code_version"),
    )
    # one current version per code; one active address per normalised full text
    op.create_index("uq_standard_address_current_code", "standard_address", ["code"], unique=True,
                    postgresql_where=sa.text("valid_to IS NULL"))
    op.create_index("uq_standard_address_active_text", "standard_address", ["normalized_text"], unique=True,
                    postgresql_where=sa.text("valid_to IS NULL AND status = 'active'"))
    op.create_index("ix_standard_address_parent", "standard_address", ["parent_code"],
                    postgresql_where=sa.text("valid_to IS NULL"))
    op.create_index("ix_standard_address_building", "standard_address", ["building_id"])
    op.create_index("ix_standard_address_geom", "standard_address", ["geom"], postgresql_using="gist",
                    postgresql_where=sa.text("valid_to IS NULL AND status = 'active'"))

    op.create_table(
        "address_alias",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("address_code", sa.String(32), nullable=False),
        sa.Column("alias", sa.Text, nullable=False),
        sa.Column("normalized_alias", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("valid_to", sa.DateTime(timezone=True)),
        sa.Column("changed_by", sa.Text, nullable=False, server_default="system"),
        sa.CheckConstraint("kind IN ('former_name','poi','compound','variant')", name="ck_address_alias_kind"),
    )
    op.create_index("uq_address_alias_current", "address_alias", ["address_code", "normalized_alias"],
                    unique=True, postgresql_where=sa.text("valid_to IS NULL"))
    op.create_index("ix_address_alias_text", "address_alias", ["normalized_alias"])


def downgrade() -> None:
    op.drop_table("address_alias")
    op.drop_table("standard_address")
