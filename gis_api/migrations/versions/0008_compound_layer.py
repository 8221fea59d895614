"""The 小区 (compound) map layer: a name column for it, and tile invalidation on every geometry column.

- `standard_address.compound_name`: generated from `components->>'compound'` (a compound's own name,
  or the name of the compound an address lies in), so the layer registry can expose it as a plain column.
- `shequ_tile_invalidate()` (migration 0005) looked only at the `geom` column of the changed rows. The
  compound layer draws `standard_address.area`, so a renamed or redrawn compound would have left stale
  tiles wherever its polygon does not meet its label point. The function now takes the bounding boxes
  of every geometry column of the changed rows (`geom` and `area` here, `geom` and `label` in
  `landuse`); tables with a single `geom` column behave exactly as before.
- The invalidation triggers are installed on `standard_address` and `landuse` now (the tile server
  would otherwise install them on first use).

Revision ID: 0008_compound_layer
Revises: 0007_compounds
Depends on: 0005_layers
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0008_compound_layer"
down_revision = "0007_compounds"
branch_labels = None
depends_on = "0005_layers"

INVALIDATE = r"""
CREATE OR REPLACE FUNCTION shequ_tile_invalidate() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    n bigint := 0;
    box geometry;
    dropped bigint := 0;
    tname text := TG_TABLE_NAME::text;
    gcols text;
    rows_sql text;
    geoms_sql text;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM tile_cache WHERE tables @> ARRAY[tname];
        GET DIAGNOSTICS dropped = ROW_COUNT;
        INSERT INTO layer_change (table_name, op, n_rows, bbox, tiles_invalidated)
        VALUES (tname, TG_OP, 0, NULL, dropped);
        RETURN NULL;
    ELSIF TG_OP = 'INSERT' THEN
        SELECT count(*) INTO n FROM new_rows;
        rows_sql := 'SELECT * FROM new_rows';
    ELSIF TG_OP = 'DELETE' THEN
        SELECT count(*) INTO n FROM old_rows;
        rows_sql := 'SELECT * FROM old_rows';
    ELSE
        SELECT count(*) INTO n FROM new_rows;
        rows_sql := 'SELECT * FROM new_rows UNION ALL SELECT * FROM old_rows';
    END IF;
    -- every geometry column of the table: "(r.geom::geometry), (r.area::geometry)"
    SELECT string_agg(format('(r.%I::geometry)', a.attname), ', ' ORDER BY a.attnum) INTO gcols
      FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
     WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped AND t.typname = 'geometry';
    IF n = 0 OR gcols IS NULL THEN
        RETURN NULL;
    END IF;
    geoms_sql := format('SELECT v.g FROM (%s) r, LATERAL (VALUES %s) v(g) WHERE v.g IS NOT NULL',
                        rows_sql, gcols);
    EXECUTE format('SELECT ST_SetSRID(ST_Extent(x.g)::geometry, 4326) FROM (%s) x', geoms_sql) INTO box;
    -- Rows without geometry change no tile: nothing to drop or log.
    IF box IS NOT NULL THEN
        EXECUTE format('DELETE FROM tile_cache c USING (%s) x WHERE c.tables @> ARRAY[$1] AND c.env && x.g',
                       geoms_sql) USING tname;
        GET DIAGNOSTICS dropped = ROW_COUNT;
        INSERT INTO layer_change (table_name, op, n_rows, bbox, tiles_invalidated)
        VALUES (tname, TG_OP, n, box, dropped);
        -- The log only has to outlive the snapshots of tile renders in flight: keep a day.
        IF random() < 0.01 THEN
            DELETE FROM layer_change WHERE changed_at < now() - interval '1 day';
        END IF;
    END IF;
    RETURN NULL;
END
$fn$;
"""


def upgrade() -> None:
    op.execute(
        "ALTER TABLE standard_address ADD COLUMN compound_name text "
        "GENERATED ALWAYS AS (components ->> 'compound') STORED"
    )
    op.execute(INVALIDATE)
    for table in ("standard_address", "landuse"):
        op.execute(f"SELECT shequ_ensure_tile_triggers(to_regclass('{table}'))")


def downgrade() -> None:
    # back to 0005's function (its upgrade text is idempotent: IF NOT EXISTS / CREATE OR REPLACE)
    spec = importlib.util.spec_from_file_location(
        "_shequ_0005_layers", Path(__file__).with_name("0005_layers.py")
    )
    layers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(layers)
    op.execute(layers.UPGRADE)
    op.execute("ALTER TABLE standard_address DROP COLUMN compound_name")
