"""Cities onboarded from their own base data (`shequ city import`): the `city` table and `city_id` on layers.

Revision ID: 0014_cities
Revises: 0001_base

`city` holds one row per imported city or district (name, declared GB/T 2260 code or none in
outside-China mode, the extent of its data, the sources and counts of its last import). The base layer
tables (road, building, poi, water, railway, demo_address_point) get a nullable `city_id`: NULL is the
demo city loaded by `shequ demo load`; a city's rows go when the city is removed (ON DELETE CASCADE).
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_cities"
down_revision = "0001_base"
branch_labels = None
depends_on = None

LAYER_TABLES = ("road", "building", "poi", "water", "railway", "demo_address_point")


def upgrade() -> None:
    """Create `city` and add `city_id` (indexed, cascading) to the base layer tables."""
    op.execute(
        """
        CREATE TABLE city (
            id            serial PRIMARY KEY,
            name          text NOT NULL UNIQUE,
            district_code varchar(12),
            outside_china boolean NOT NULL DEFAULT false,
            extent        geometry(Polygon, 4326),
            sources       jsonb NOT NULL DEFAULT '[]'::jsonb,
            counts        jsonb NOT NULL DEFAULT '{}'::jsonb,
            imported_at   timestamptz NOT NULL DEFAULT now()
        )"""
    )
    for table in LAYER_TABLES:
        op.add_column(
            table,
            sa.Column("city_id", sa.Integer, sa.ForeignKey("city.id", ondelete="CASCADE"), nullable=True),
        )
        op.create_index(f"ix_{table}_city_id", table, ["city_id"])


def downgrade() -> None:
    """Drop `city_id` from the layers (imported cities' rows included) and the `city` table."""
    for table in LAYER_TABLES:
        op.execute(f"DELETE FROM {table} WHERE city_id IS NOT NULL")
        op.drop_index(f"ix_{table}_city_id", table_name=table)
        op.drop_column(table, "city_id")
    op.drop_table("city")
