"""Tile cache size cap: last-access time and stored size per cached tile, for LRU eviction.

- `tile_cache.accessed_at`: when the tile was last served (set on insert; refreshed in batches, at most
  once per `SHEQU_TILE_CACHE_TOUCH_MINUTES` per tile, by `tiles.store.CacheKeeper`). Deliberately not
  indexed: a refresh changes no indexed column, so PostgreSQL can do it as a HOT update in place.
- `tile_cache.nbytes`: `octet_length(data)`, generated and stored, so the cache size is a sum over a
  narrow column and the eviction never reads the tile bytes.

The invalidation triggers (0005, 0008) are unchanged: they delete rows, whatever these columns hold.

Revision ID: 0009_tile_cache_lru
Revises: 0008_compound_layer (the last revision that changed the tile cache's trigger function)
"""

from alembic import op

revision = "0009_tile_cache_lru"
down_revision = "0008_compound_layer"
branch_labels = None
depends_on = "0005_layers"


def upgrade() -> None:
    op.execute(
        "ALTER TABLE tile_cache ADD COLUMN IF NOT EXISTS accessed_at timestamptz NOT NULL DEFAULT now()"
    )
    op.execute("UPDATE tile_cache SET accessed_at = created_at")
    op.execute(
        "ALTER TABLE tile_cache ADD COLUMN IF NOT EXISTS nbytes integer "
        "GENERATED ALWAYS AS (octet_length(data)) STORED"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE tile_cache DROP COLUMN IF EXISTS nbytes")
    op.execute("ALTER TABLE tile_cache DROP COLUMN IF EXISTS accessed_at")
