"""Accounts, grants, police-station areas, API keys, browser sessions and the append-only audit log.

Revision ID: 0010_accounts
Revises: 0001_base
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0010_accounts"
down_revision = "0001_base"
branch_labels = None
depends_on = None

USER_ROLES = ("admin", "street", "community", "grid_manager", "police", "planner")
KINDS = ("township", "community", "grid", "police_area")


def _in(values) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _ts(name: str, **kw) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), **kw)


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("password_hash", sa.Text),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("failed_attempts", sa.Integer, nullable=False, server_default="0"),
        _ts("locked_until"),
        _ts("last_login_at"),
        # people in charge: contact details, classified as personal data (gis_api/auth/classification.py)
        sa.Column("contact_phone", sa.Text),
        sa.Column("contact_office", sa.Text),
        sa.Column("created_by", sa.Text, nullable=False, server_default="system"),
        _ts("created_at", nullable=False, server_default=sa.func.now()),
        _ts("updated_at", nullable=False, server_default=sa.func.now()),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.CheckConstraint("role IN " + _in(USER_ROLES), name="ck_app_user_role"),
        sa.CheckConstraint("name ~ '^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$'", name="ck_app_user_name"),
    )
    op.create_index("uq_app_user_name", "app_user", [sa.text("lower(name)")], unique=True)

    op.create_table(
        "user_grant",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("granted_by", sa.Text, nullable=False, server_default="system"),
        _ts("granted_at", nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("kind IN " + _in(KINDS), name="ck_user_grant_kind"),
        sa.UniqueConstraint("user_id", "kind", "code", name="uq_user_grant"),
    )
    op.create_index("ix_user_grant_code", "user_grant", ["kind", "code"])

    op.create_table(
        "police_area",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("code", sa.Text, nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False, server_default="import"),
        sa.Column("properties", JSONB, nullable=False, server_default="{}"),
        _ts("created_at", nullable=False, server_default=sa.func.now()),
        _ts("updated_at", nullable=False, server_default=sa.func.now()),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False),
    )
    op.create_index("ix_police_area_geom", "police_area", ["geom"], postgresql_using="gist")

    op.create_table(
        "api_key",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("key_hash", sa.Text, nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("scopes", ARRAY(sa.Text), nullable=False, server_default="{}"),
        _ts("expires_at"),
        sa.Column("rate_per_min", sa.Integer, nullable=False, server_default="600"),
        _ts("revoked_at"),
        sa.Column("created_by", sa.Text, nullable=False),
        _ts("created_at", nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("rate_per_min > 0", name="ck_api_key_rate"),
        sa.CheckConstraint("id ~ '^[0-9a-f]{12}$'", name="ck_api_key_id"),
    )

    op.create_table(
        "user_session",
        sa.Column("id_hash", sa.Text, primary_key=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False),
        _ts("created_at", nullable=False, server_default=sa.func.now()),
        _ts("expires_at", nullable=False),
        _ts("revoked_at"),
        sa.Column("ip", sa.Text),
        sa.Column("user_agent", sa.Text),
    )
    op.create_index("ix_user_session_user", "user_session", ["user_id"])

    op.execute("CREATE SEQUENCE audit_log_id_seq")
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, primary_key=True),
        _ts("at", nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("actor_role", sa.Text, nullable=False),
        sa.Column("ip", sa.Text),
        sa.Column("request_id", sa.Text),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("endpoint", sa.Text),
        sa.Column("record_ids", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("before", JSONB),
        sa.Column("after", JSONB),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("detail", JSONB),
        sa.Column("prev_hash", sa.CHAR(64), nullable=False),
        sa.Column("hash", sa.CHAR(64), nullable=False, unique=True),
    )
    op.execute("ALTER SEQUENCE audit_log_id_seq OWNED BY audit_log.id")
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_actor", "audit_log", ["actor", "at"])
    op.create_index("ix_audit_log_action", "audit_log", ["action", "at"])
    op.create_index("ix_audit_log_records", "audit_log", ["record_ids"], postgresql_using="gin")
    op.execute(
        """
        CREATE FUNCTION audit_log_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_refuse()"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse()"
    )
    op.execute("REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP TABLE audit_log")
    op.execute("DROP FUNCTION audit_log_refuse()")
    for table in ("user_session", "api_key", "police_area", "user_grant", "app_user"):
        op.drop_table(table)
