"""Reports of wrong QR door plates (门牌纠错): a correction task per report, with a state.

Revision ID: 0011_plate_reports
Revises: 0002_addresses (the plate's address code is a standard-address code)
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_plate_reports"
down_revision = "0002_addresses"
branch_labels = None
depends_on = None

KINDS = ("wrong_address", "wrong_place", "damaged", "wrong_contact", "other")
STATES = ("open", "confirmed", "corrected", "dismissed")


def _in(values) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    op.create_table(
        "plate_report",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("address_code", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("state", sa.Text, nullable=False, server_default="open"),
        sa.Column("state_reason", sa.Text),
        sa.Column("reported_by", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("kind IN " + _in(KINDS), name="ck_plate_report_kind"),
        sa.CheckConstraint("state IN " + _in(STATES), name="ck_plate_report_state"),
        sa.CheckConstraint("note IS NULL OR length(note) <= 500", name="ck_plate_report_note"),
    )
    op.create_index("ix_plate_report_address", "plate_report", ["address_code", "state"])


def downgrade() -> None:
    op.drop_index("ix_plate_report_address", "plate_report")
    op.drop_table("plate_report")
