"""Grid staff: more roles (网格长, 专职/兼职网格员) and one current holder per grid and role.

Revision ID: 0006_grids_staff
Revises: 0003_grids
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_grids_staff"
down_revision = "0003_grids"
branch_labels = None
depends_on = None

ROLES = ("网格长", "网格员", "专职网格员", "兼职网格员", "微网格长")


def upgrade() -> None:
    op.drop_constraint("ck_grid_staff_role", "grid_staff", type_="check")
    op.create_check_constraint("ck_grid_staff_role", "grid_staff",
                               "role IN (" + ", ".join(f"'{r}'" for r in ROLES) + ")")
    op.create_check_constraint("ck_grid_staff_term", "grid_staff", "valid_to IS NULL OR valid_to >= valid_from")
    op.create_index("uq_grid_staff_current", "grid_staff", ["grid_code", "role"], unique=True,
                    postgresql_where=sa.text("valid_to IS NULL"))


def downgrade() -> None:
    op.drop_index("uq_grid_staff_current", "grid_staff")
    op.drop_constraint("ck_grid_staff_term", "grid_staff", type_="check")
    op.drop_constraint("ck_grid_staff_role", "grid_staff", type_="check")
    op.create_check_constraint("ck_grid_staff_role", "grid_staff", "role IN ('网格员','微网格长')")
