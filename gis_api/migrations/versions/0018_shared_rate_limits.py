"""Rate-limit buckets shared by every API worker process (issue 15).

The token buckets of API keys (``rate_per_min``) and of the public plate reports were kept in each worker
process's memory, so with ``shequ serve --workers N`` a client spreading its connections got N times its
limit. One row per key here (`gis_api.auth.ratelimit.SharedRateLimiter`), updated by one atomic statement.
UNLOGGED: a crash of PostgreSQL empties it, which only refills every bucket — no durability is needed, and
the writes of every request then cost no WAL.

Revision ID: 0018_shared_rate_limits
Revises: 0001_base
"""

from alembic import op

revision = "0018_shared_rate_limits"
down_revision = "0001_base"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """The bucket table."""
    op.execute("""
CREATE UNLOGGED TABLE rate_bucket (
    key text PRIMARY KEY,
    rate_per_min integer NOT NULL CHECK (rate_per_min > 0),
    tokens double precision NOT NULL,
    stamp timestamptz NOT NULL,
    granted boolean NOT NULL DEFAULT true
)""")
    op.execute("CREATE INDEX rate_bucket_stamp ON rate_bucket (stamp)")


def downgrade() -> None:
    """Drop it (the limits fall back to each process's own buckets only if the code says so)."""
    op.execute("DROP TABLE IF EXISTS rate_bucket")
