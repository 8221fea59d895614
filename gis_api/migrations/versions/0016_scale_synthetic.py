"""Synthetic addresses (`shequ demo synth`, issue 14): `standard_address.source` may be 'synthetic'.

Every row of the scale data set says so; nothing else about the table changes.

Revision ID: 0016_scale_synthetic
Revises: 0002_addresses
"""

from alembic import op

revision = "0016_scale_synthetic"
down_revision = "0002_addresses"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Allow source = 'synthetic'."""
    op.drop_constraint("ck_standard_address_source", "standard_address", type_="check")
    op.create_check_constraint(
        "ck_standard_address_source", "standard_address", "source IN ('osm','generated','import','manual','synthetic')"
    )


def downgrade() -> None:
    """Remove the synthetic rows and restore the constraint."""
    op.execute("DELETE FROM standard_address WHERE source = 'synthetic'")
    op.drop_constraint("ck_standard_address_source", "standard_address", type_="check")
    op.create_check_constraint(
        "ck_standard_address_source", "standard_address", "source IN ('osm','generated','import','manual')"
    )
