"""Grids: grid / micro-grid polygons with versions, street blocks, building assignment, grid staff, H3 cells.

Townships and communities live in ``admin_unit`` (level township/community; ``source`` 'provisional'
for the derived demo ones, 'import' for a city's own). Grid and micro-grid rows are versioned: a
rebuild closes the current rows (``valid_to``) and inserts ``version + 1``; the current row of a code is
the one with ``valid_to IS NULL``.

Revision ID: 0003_grids
Revises: 0001_base
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0003_grids"
down_revision = "0001_base"
branch_labels = None
depends_on = None


def _geom(kind: str):
    return Geometry(kind, srid=4326, spatial_index=False)


def upgrade() -> None:
    op.create_table(
        "grid",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("code", sa.String(20), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("level", sa.Text, nullable=False),
        sa.Column("parent_code", sa.String(20), nullable=False),
        sa.Column("community_code", sa.String(12), nullable=False),
        sa.Column("households", sa.Integer, nullable=False, server_default="0"),
        sa.Column("buildings", sa.Integer, nullable=False, server_default="0"),
        sa.Column("area_m2", sa.Float, nullable=False),
        sa.Column("compactness", sa.Float, nullable=False),
        sa.Column("contiguous", sa.Boolean, nullable=False),
        sa.Column("flags", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("valid_to", sa.DateTime(timezone=True)),
        sa.Column("source", sa.Text, nullable=False, server_default="built"),
        sa.Column("properties", JSONB, nullable=False, server_default="{}"),
        sa.Column("geom", _geom("MULTIPOLYGON"), nullable=False),
        sa.CheckConstraint("level IN ('grid','microgrid')", name="ck_grid_level"),
        sa.UniqueConstraint("code", "version", name="uq_grid_code_version"),
    )
    op.create_index("uq_grid_current_code", "grid", ["code"], unique=True,
                    postgresql_where=sa.text("valid_to IS NULL"))
    op.create_index("ix_grid_parent", "grid", ["parent_code"], postgresql_where=sa.text("valid_to IS NULL"))
    op.create_index("ix_grid_community", "grid", ["community_code"])
    op.create_index("ix_grid_geom", "grid", ["geom"], postgresql_using="gist")

    op.create_table(
        "street_block",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("community_code", sa.String(12), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("households", sa.Integer, nullable=False, server_default="0"),
        sa.Column("buildings", sa.Integer, nullable=False, server_default="0"),
        sa.Column("area_m2", sa.Float, nullable=False),
        sa.Column("geom", _geom("MULTIPOLYGON"), nullable=False),
        sa.UniqueConstraint("community_code", "seq", name="uq_street_block_seq"),
    )
    op.create_index("ix_street_block_geom", "street_block", ["geom"], postgresql_using="gist")

    op.create_table(
        "grid_assignment",
        sa.Column("building_id", sa.BigInteger, sa.ForeignKey("building.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("community_code", sa.String(12), nullable=False),
        sa.Column("grid_code", sa.String(20), nullable=False),
        sa.Column("microgrid_code", sa.String(20), nullable=False),
        sa.Column("households", sa.Integer, nullable=False, server_default="0"),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    )
    op.create_index("ix_grid_assignment_grid", "grid_assignment", ["grid_code"])
    op.create_index("ix_grid_assignment_microgrid", "grid_assignment", ["microgrid_code"])
    op.create_index("ix_grid_assignment_community", "grid_assignment", ["community_code"])

    # 网格员 / 微网格长: person_ref points at the people table that comes later
    op.create_table(
        "grid_staff",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("grid_code", sa.String(20), nullable=False),
        sa.Column("person_ref", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("valid_to", sa.DateTime(timezone=True)),
        sa.CheckConstraint("role IN ('网格员','微网格长')", name="ck_grid_staff_role"),
    )
    op.create_index("ix_grid_staff_grid", "grid_staff", ["grid_code"])

    op.create_table(
        "h3_cell",
        sa.Column("area_code", sa.String(20), nullable=False),
        sa.Column("res", sa.SmallInteger, nullable=False),
        sa.Column("mode", sa.Text, nullable=False),
        sa.Column("cell", sa.String(16), nullable=False),
        sa.Column("households", sa.Integer, nullable=False, server_default="0"),
        sa.Column("buildings", sa.Integer, nullable=False, server_default="0"),
        sa.Column("pois", sa.Integer, nullable=False, server_default="0"),
        sa.Column("addresses", sa.Integer, nullable=False, server_default="0"),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("geom", _geom("POLYGON"), nullable=False),
        sa.PrimaryKeyConstraint("area_code", "res", "mode", "cell", name="pk_h3_cell"),
        sa.CheckConstraint("mode IN ('center','overlap','full')", name="ck_h3_mode"),
        sa.CheckConstraint("res BETWEEN 7 AND 12", name="ck_h3_res"),
    )
    op.create_index("ix_h3_cell_geom", "h3_cell", ["geom"], postgresql_using="gist")


def downgrade() -> None:
    for table in ("h3_cell", "grid_staff", "grid_assignment", "street_block", "grid"):
        op.drop_table(table)
