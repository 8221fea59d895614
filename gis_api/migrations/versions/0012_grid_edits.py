"""Grid edits (网格编辑): drafts, review, the versions they wrote, and the old → new code map.

- ``grid_edit``: one edit of one community — operations (JSON, lon/lat), the versions of the grids it was
  drafted on (``base_versions``), its state (draft → submitted → approved | rejected; applied directly
  by an admin; a rollback is an edit of kind ``rollback``), who did what when and why, and ``result``
  (codes changed / created / retired, lineage, versions written, figures).
- ``grid_code_map``: every old → new code relation an applied edit made (split, merge, rollback), kept.

The grid versions themselves are rows of ``grid`` (``valid_from`` / ``valid_to``, ``source = 'edit'``,
``properties.edit`` = {id, by, reason}).

Revision ID: 0012_grid_edits
Revises: 0006_grids_staff
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0012_grid_edits"
down_revision = "0006_grids_staff"
branch_labels = None
depends_on = None

STATES = ("draft", "submitted", "approved", "rejected")


def upgrade() -> None:
    op.create_table(
        "grid_edit",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("community_code", sa.String(12), nullable=False),
        sa.Column("kind", sa.Text, nullable=False, server_default="edit"),
        sa.Column("status", sa.Text, nullable=False, server_default="draft"),
        sa.Column("operations", JSONB, nullable=False, server_default="[]"),
        sa.Column("base_versions", JSONB, nullable=False, server_default="{}"),
        sa.Column("touched", JSONB, nullable=False, server_default="[]"),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("submitted_by", sa.Text),
        sa.Column("submitted_at", sa.DateTime(timezone=True)),
        sa.Column("decided_by", sa.Text),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("decision_reason", sa.Text),
        sa.Column("applied_at", sa.DateTime(timezone=True)),
        sa.Column("result", JSONB),
        sa.Column("rollback_of", sa.BigInteger, sa.ForeignKey("grid_edit.id")),
        sa.Column("rolled_back_by", sa.BigInteger, sa.ForeignKey("grid_edit.id")),
        sa.CheckConstraint("status IN (" + ", ".join(f"'{s}'" for s in STATES) + ")", name="ck_grid_edit_status"),
        sa.CheckConstraint("kind IN ('edit', 'rollback')", name="ck_grid_edit_kind"),
    )
    op.create_index("ix_grid_edit_community", "grid_edit", ["community_code", "status"])
    op.create_table(
        "grid_code_map",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("edit_id", sa.BigInteger, sa.ForeignKey("grid_edit.id"), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("old_code", sa.String(20), nullable=False),
        sa.Column("new_code", sa.String(20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_grid_code_map_old", "grid_code_map", ["old_code"])
    op.create_index("ix_grid_code_map_new", "grid_code_map", ["new_code"])


def downgrade() -> None:
    op.drop_table("grid_code_map")
    op.drop_table("grid_edit")
