"""Tile cache with exact invalidation: tile_cache, layer_change and the statement triggers.

Revision ID: 0005_layers
Revises: 0001_base

Every layer table gets four statement-level triggers (INSERT / UPDATE / DELETE with transition
tables, and TRUNCATE) that, in the same transaction as the edit, delete the cached tiles whose
envelope (tile + MVT buffer) meets the bbox of any changed row (old and new geometry), and log
the change in ``layer_change``. Tables created by later migrations get the same triggers from
``shequ_ensure_tile_triggers(regclass)``, which the tile server calls before it caches a tile
of that table.
"""

from alembic import op

revision = "0005_layers"
down_revision = "0001_base"
branch_labels = None
depends_on = None

BASE_TABLES = ("admin_unit", "road", "building", "poi", "water", "railway", "demo_address_point")

UPGRADE = r"""
CREATE TABLE IF NOT EXISTS tile_cache (
    tileset    text        NOT NULL,
    z          smallint    NOT NULL,
    x          integer     NOT NULL,
    y          integer     NOT NULL,
    tables     text[]      NOT NULL,
    env        geometry(Polygon, 4326) NOT NULL,
    data       bytea       NOT NULL,
    etag       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tileset, z, x, y)
);
CREATE INDEX IF NOT EXISTS tile_cache_env_gix ON tile_cache USING gist (env);
CREATE INDEX IF NOT EXISTS tile_cache_tables_gin ON tile_cache USING gin (tables);

CREATE TABLE IF NOT EXISTS layer_change (
    id         bigserial   PRIMARY KEY,
    table_name text        NOT NULL,
    op         text        NOT NULL,
    n_rows     bigint      NOT NULL,
    bbox       geometry(Geometry, 4326),
    tiles_invalidated bigint NOT NULL DEFAULT 0,
    xid        xid8        NOT NULL DEFAULT pg_current_xact_id(),
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS layer_change_xid_idx ON layer_change (xid);

CREATE OR REPLACE FUNCTION shequ_tile_invalidate() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    n bigint := 0;
    box geometry;
    dropped bigint := 0;
    tname text := TG_TABLE_NAME::text;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM tile_cache WHERE tables @> ARRAY[tname];
        GET DIAGNOSTICS dropped = ROW_COUNT;
        INSERT INTO layer_change (table_name, op, n_rows, bbox, tiles_invalidated)
        VALUES (tname, TG_OP, 0, NULL, dropped);
        RETURN NULL;
    ELSIF TG_OP = 'INSERT' THEN
        SELECT count(*), ST_SetSRID(ST_Extent(r.geom)::geometry, 4326) INTO n, box FROM new_rows r;
        IF n > 0 THEN
            DELETE FROM tile_cache c USING new_rows r
             WHERE c.tables @> ARRAY[tname] AND c.env && r.geom;
            GET DIAGNOSTICS dropped = ROW_COUNT;
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT count(*), ST_SetSRID(ST_Extent(r.geom)::geometry, 4326) INTO n, box FROM old_rows r;
        IF n > 0 THEN
            DELETE FROM tile_cache c USING old_rows r
             WHERE c.tables @> ARRAY[tname] AND c.env && r.geom;
            GET DIAGNOSTICS dropped = ROW_COUNT;
        END IF;
    ELSE
        SELECT count(*) FILTER (WHERE r.is_new), ST_SetSRID(ST_Extent(r.geom)::geometry, 4326) INTO n, box
          FROM (SELECT geom, true AS is_new FROM new_rows UNION ALL SELECT geom, false FROM old_rows) r;
        IF n > 0 THEN
            DELETE FROM tile_cache c
             USING (SELECT geom FROM new_rows UNION ALL SELECT geom FROM old_rows) r
             WHERE c.tables @> ARRAY[tname] AND c.env && r.geom;
            GET DIAGNOSTICS dropped = ROW_COUNT;
        END IF;
    END IF;
    -- Rows without geometry change no tile: nothing to log.
    IF n > 0 AND box IS NOT NULL THEN
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

CREATE OR REPLACE FUNCTION shequ_ensure_tile_triggers(tbl regclass) RETURNS boolean
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('shequ_tile_triggers'));
    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = tbl AND tgname = 'shequ_tile_trunc') THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TRIGGER shequ_tile_ins AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION shequ_tile_invalidate()', tbl);
    EXECUTE format('CREATE TRIGGER shequ_tile_upd AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows '
                   'NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION shequ_tile_invalidate()', tbl);
    EXECUTE format('CREATE TRIGGER shequ_tile_del AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION shequ_tile_invalidate()', tbl);
    EXECUTE format('CREATE TRIGGER shequ_tile_trunc AFTER TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION shequ_tile_invalidate()', tbl);
    RETURN true;
END
$fn$;
"""


def upgrade() -> None:
    op.execute(UPGRADE)
    for table in BASE_TABLES:
        op.execute(f"SELECT shequ_ensure_tile_triggers(to_regclass('{table}')) WHERE to_regclass('{table}') IS NOT NULL")


def downgrade() -> None:
    op.execute(
        """
        DO $$
        DECLARE r record;
        BEGIN
            FOR r IN SELECT tgrelid::regclass AS tbl, tgname FROM pg_trigger
                     WHERE tgname IN ('shequ_tile_ins', 'shequ_tile_upd', 'shequ_tile_del', 'shequ_tile_trunc')
            LOOP
                EXECUTE format('DROP TRIGGER %I ON %s', r.tgname, r.tbl);
            END LOOP;
        END $$;
        DROP FUNCTION IF EXISTS shequ_ensure_tile_triggers(regclass);
        DROP FUNCTION IF EXISTS shequ_tile_invalidate();
        DROP TABLE IF EXISTS layer_change;
        DROP TABLE IF EXISTS tile_cache;
        """
    )
