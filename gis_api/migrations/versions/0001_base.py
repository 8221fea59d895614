"""Base tables: administrative units, roads, buildings, POIs, water, railways, demo address points.

Geometry is stored once, in EPSG:4326, with GiST indexes. Later features add their own revisions
on top of this one (standard addresses, grids, facilities/cameras, layers…).

Revision ID: 0001_base
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0001_base"
down_revision = None
branch_labels = None
depends_on = None


def _geom(kind: str):
    return Geometry(kind, srid=4326, spatial_index=False)


def _gist(table: str, column: str = "geom") -> None:
    op.create_index(f"ix_{table}_{column}", table, [column], postgresql_using="gist")


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")

    op.create_table(
        "admin_unit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(12), nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("level", sa.Text, nullable=False),
        sa.Column("parent_code", sa.String(12), sa.ForeignKey("admin_unit.code", deferrable=True,
                                                              initially="DEFERRED")),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("valid_to", sa.DateTime(timezone=True)),
        sa.Column("properties", JSONB, nullable=False, server_default="{}"),
        sa.Column("geom", _geom("MULTIPOLYGON")),
        sa.CheckConstraint("level IN ('province','city','district','township','community')", name="ck_admin_level"),
    )
    op.create_index("ix_admin_unit_parent", "admin_unit", ["parent_code"])
    op.create_index("ix_admin_unit_level", "admin_unit", ["level"])
    _gist("admin_unit")

    op.create_table(
        "road",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("osm_id", sa.BigInteger, nullable=False, unique=True),
        sa.Column("name", sa.Text),
        sa.Column("name_en", sa.Text),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("oneway", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("node_ids", ARRAY(sa.BigInteger), nullable=False),
        sa.Column("tags", JSONB, nullable=False, server_default="{}"),
        sa.Column("geom", _geom("LINESTRING"), nullable=False),
    )
    op.create_index("ix_road_name", "road", ["name"])
    _gist("road")

    op.create_table(
        "building",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("osm_id", sa.BigInteger, nullable=False, unique=True),
        sa.Column("name", sa.Text),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("kind_detail", sa.Text),
        sa.Column("height_m", sa.Float),
        sa.Column("floors", sa.Integer),
        sa.Column("area_m2", sa.Float),
        sa.Column("households_est", sa.Integer, nullable=False, server_default="0"),
        sa.Column("addr_street", sa.Text),
        sa.Column("addr_housenumber", sa.Text),
        sa.Column("tags", JSONB, nullable=False, server_default="{}"),
        sa.Column("geom", _geom("MULTIPOLYGON"), nullable=False),
    )
    _gist("building")

    op.create_table(
        "poi",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("osm_id", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("tags", JSONB, nullable=False, server_default="{}"),
        sa.Column("geom", _geom("POINT"), nullable=False),
        sa.UniqueConstraint("osm_id", "kind", name="uq_poi_osm_kind"),
    )
    op.create_index("ix_poi_kind", "poi", ["kind"])
    _gist("poi")

    op.create_table(
        "water",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("osm_id", sa.BigInteger, nullable=False, unique=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("geom", _geom("MULTIPOLYGON"), nullable=False),
    )
    _gist("water")

    op.create_table(
        "railway",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("osm_id", sa.BigInteger, nullable=False, unique=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("geom", _geom("MULTILINESTRING"), nullable=False),
    )
    _gist("railway")

    op.create_table(
        "demo_address_point",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("osm_id", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("kind_detail", sa.Text),
        sa.Column("name", sa.Text),
        sa.Column("addr_street", sa.Text),
        sa.Column("addr_housenumber", sa.Text),
        sa.Column("geom", _geom("POINT"), nullable=False),
        sa.UniqueConstraint("osm_id", "kind", name="uq_demo_address_point"),
    )
    _gist("demo_address_point")


def downgrade() -> None:
    for table in ("demo_address_point", "railway", "water", "poi", "building", "road", "admin_unit"):
        op.drop_table(table)
