"""A GiST index of the points reverse geocoding asks for: house numbers and buildings only (issue 14).

`address_registry.store.nearest` (``GET /reverse``, and the nearest-address fall-back) orders the active
house numbers and buildings by distance (KNN, ``geom <-> point``). The only GiST index on ``geom`` held
every active level, and units, floors and rooms share their building's point: the KNN scan walked through
every home at each building near the point and dropped them by the ``level`` filter — 3,241 rows read to
return 24 beside a synthetic tower at 10⁵ addresses (docs/scaling.md section 6). This partial index holds
the two levels the query reads, so the scan reads only what it returns.

Revision ID: 0019_scale_reverse_index
Revises: 0002_addresses
"""

from alembic import op

revision = "0019_scale_reverse_index"
down_revision = "0002_addresses"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """The partial GiST index (its predicate is the one `store.nearest` filters on)."""
    op.execute("""CREATE INDEX IF NOT EXISTS ix_standard_address_reverse ON standard_address USING gist (geom)
        WHERE valid_to IS NULL AND status = 'active' AND level IN ('house_number', 'building')""")


def downgrade() -> None:
    """Drop it (the nearest query falls back to ix_standard_address_geom)."""
    op.execute("DROP INDEX IF EXISTS ix_standard_address_reverse")
