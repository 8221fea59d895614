"""Siting: facility types (GB 50180-2018 radii), facilities, cameras, saved analysis results.

Revision ID: 0004_siting
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0004_siting"
down_revision = "0001_base"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "facility_type",
        sa.Column("code", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("radius_m", sa.Float, nullable=False),
        sa.Column("distance", sa.Text, nullable=False, server_default="walk"),
        sa.Column("life_circle", sa.Text, nullable=False),
        sa.Column("clause", sa.Text, nullable=False),
        sa.Column("poi_kinds", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("name_patterns", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.CheckConstraint("radius_m > 0", name="ck_facility_type_radius"),
        sa.CheckConstraint("distance IN ('walk','line')", name="ck_facility_type_distance"),
    )
    op.create_table(
        "facility",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("type_code", sa.Text, sa.ForeignKey("facility_type.code", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("status", sa.Text, nullable=False, server_default="existing"),
        sa.Column("capacity", sa.Float),
        sa.Column("source", sa.Text, nullable=False, server_default="manual"),
        sa.Column("properties", JSONB, nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.CheckConstraint("status IN ('existing','planned')", name="ck_facility_status"),
    )
    op.create_index("ix_facility_geom", "facility", ["geom"], postgresql_using="gist")
    op.create_index("ix_facility_type", "facility", ["type_code"])
    op.create_table(
        "camera",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("community_code", sa.String(12)),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("heading_deg", sa.Float, nullable=False),
        sa.Column("range_m", sa.Float, nullable=False),
        sa.Column("fov_deg", sa.Float, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="existing"),
        sa.Column("properties", JSONB, nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.CheckConstraint("status IN ('existing','planned')", name="ck_camera_status"),
        sa.CheckConstraint("range_m > 0 AND fov_deg > 0 AND fov_deg <= 360", name="ck_camera_optics"),
    )
    op.create_index("ix_camera_geom", "camera", ["geom"], postgresql_using="gist")
    op.create_table(
        "analysis_result",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("params", JSONB, nullable=False),
        sa.Column("summary", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("kind IN ('coverage','siting','cameras')", name="ck_analysis_result_kind"),
    )
    rows = _seed_rows()
    if rows:
        op.bulk_insert(
            sa.table(
                "facility_type",
                sa.column("code"), sa.column("name"), sa.column("radius_m"), sa.column("distance"),
                sa.column("life_circle"), sa.column("clause"),
                sa.column("poi_kinds", ARRAY(sa.Text)), sa.column("name_patterns", ARRAY(sa.Text)),
            ),
            rows,
        )


def _seed_rows() -> list[dict]:
    from siting.standards import FACILITY_TYPES

    return [
        {"code": t.code, "name": t.name, "radius_m": float(t.radius_m), "distance": t.distance,
         "life_circle": t.life_circle, "clause": t.clause, "poi_kinds": list(t.poi_kinds),
         "name_patterns": list(t.name_patterns)}
        for t in FACILITY_TYPES
    ]


def downgrade() -> None:
    op.drop_table("analysis_result")
    op.drop_table("camera")
    op.drop_table("facility")
    op.drop_table("facility_type")
