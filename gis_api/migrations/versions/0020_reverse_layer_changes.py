"""A change log of the layers reverse geocoding holds in memory: buildings, admin units, grids (issue 14).

The API process answers ``GET /reverse`` from memory (`address_registry.reverse_cache`). Registry writes
reach it by the geocoder's deltas; the building footprints, admin polygons and grids change rarely and are
reloaded whole when they changed. To see that cheaply, a statement-level trigger on each of the three tables
records the writing transaction in `reverse_layer_change` — one row per (layer, transaction), so concurrent
writers (the grids of many communities built in parallel) never wait on a shared counter row — and a reader's
stamp is each layer's (max id, row count): the count catches a transaction that took its id earlier and
committed later, as the registry's stamp does.

Revision ID: 0020_reverse_layer_changes
Revises: 0003_grids
"""

from alembic import op

revision = "0020_reverse_layer_changes"
down_revision = "0003_grids"
branch_labels = None
depends_on = None

TABLES = ("building", "admin_unit", "grid")


def upgrade() -> None:
    """The log, its trigger function and one statement-level trigger per table."""
    op.execute("""CREATE TABLE reverse_layer_change (
        id bigserial PRIMARY KEY,
        layer text NOT NULL,
        xid bigint NOT NULL DEFAULT txid_current(),
        at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (layer, xid))""")
    op.execute("""CREATE FUNCTION reverse_layer_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO reverse_layer_change (layer) VALUES (TG_ARGV[0]) ON CONFLICT (layer, xid) DO NOTHING;
            RETURN NULL;
        END $$""")
    for table in TABLES:
        op.execute(f"""CREATE TRIGGER {table}_reverse_layer_changed
            AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION reverse_layer_changed('{table}')""")


def downgrade() -> None:
    """Drop the triggers, the function and the log."""
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_reverse_layer_changed ON {table}")
    op.execute("DROP FUNCTION IF EXISTS reverse_layer_changed()")
    op.execute("DROP TABLE IF EXISTS reverse_layer_change")
