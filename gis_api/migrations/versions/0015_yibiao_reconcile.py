"""Police–grid reconciliation of 一标三实 (实时比对): the police station's extract and the mismatch tasks.

- `police_batch`: one import of a police station's extract (the police area it covers, who, when, rows).
- `police_record`: the records of a batch — a person (document, name, registration) or a unit (credit code,
  name) at an address code, or a house (use). Its own source: never written into the grid's tables; the
  latest batch of a police area is the police side of the comparison.
- `reconcile_task`: one mismatch at an address (kind, subject, fields), assigned to the grid and the police
  area in charge, with a state (open / confirmed / corrected / dismissed with reason);
  `reconcile_task_event`: its history.

Revision ID: 0015_yibiao_reconcile
Revises: 0011_residents
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0015_yibiao_reconcile"
down_revision = "0011_residents"
branch_labels = None
depends_on = None

RECORD_TYPES = ("person", "house", "unit")
KINDS = ("police_only", "grid_only", "different_address", "field_conflict", "vacant_occupied",
         "unit_no_credit_code", "unit_not_in_police")
STATES = ("open", "confirmed", "corrected", "dismissed")


def _in(values) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    op.create_table(
        "police_batch",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("police_area", sa.Text, nullable=False),
        sa.Column("filename", sa.Text),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("imported_by", sa.Text, nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_police_batch_area", "police_batch", ["police_area", "id"])
    op.create_table(
        "police_record",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("batch_id", sa.BigInteger, sa.ForeignKey("police_batch.id", ondelete="CASCADE"), nullable=False),
        sa.Column("record_type", sa.Text, nullable=False),
        sa.Column("address_code", sa.String(32), nullable=False),
        sa.Column("id_type", sa.Text),
        sa.Column("id_number", sa.Text),
        sa.Column("name", sa.Text),
        sa.Column("registration", sa.Text),
        sa.Column("house_use", sa.Text),
        sa.Column("credit_code", sa.String(18)),
        sa.CheckConstraint("record_type IN " + _in(RECORD_TYPES), name="ck_police_record_type"),
    )
    op.create_index("ix_police_record_batch", "police_record", ["batch_id", "record_type"])
    op.create_index("ix_police_record_document", "police_record", ["id_number"])
    op.create_table(
        "reconcile_task",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("address_code", sa.String(32), nullable=False),
        sa.Column("subject", sa.Text, nullable=False, server_default=""),
        sa.Column("person_id", sa.BigInteger),
        sa.Column("unit_id", sa.BigInteger),
        sa.Column("detail", JSONB, nullable=False, server_default="{}"),
        sa.Column("police_area", sa.Text),
        sa.Column("grid_code", sa.Text),
        sa.Column("community_code", sa.Text),
        sa.Column("township_code", sa.Text),
        sa.Column("batch_id", sa.BigInteger),
        sa.Column("state", sa.Text, nullable=False, server_default="open"),
        sa.Column("state_reason", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("kind IN " + _in(KINDS), name="ck_reconcile_task_kind"),
        sa.CheckConstraint("state IN " + _in(STATES), name="ck_reconcile_task_state"),
        sa.CheckConstraint("state <> 'dismissed' OR state_reason IS NOT NULL", name="ck_reconcile_task_reason"),
    )
    # one open task per mismatch: a re-run finds the same one instead of adding a copy
    op.create_index("uq_reconcile_task_open", "reconcile_task", ["kind", "address_code", "subject"], unique=True,
                    postgresql_where=sa.text("state = 'open'"))
    op.create_index("ix_reconcile_task_area", "reconcile_task", ["police_area", "state"])
    op.create_index("ix_reconcile_task_grid", "reconcile_task", ["grid_code", "state"])
    op.create_table(
        "reconcile_task_event",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("task_id", sa.BigInteger, sa.ForeignKey("reconcile_task.id", ondelete="CASCADE"), nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_reconcile_task_event_task", "reconcile_task_event", ["task_id", "id"])


def downgrade() -> None:
    for table in ("reconcile_task_event", "reconcile_task", "police_record", "police_batch"):
        op.drop_table(table)
