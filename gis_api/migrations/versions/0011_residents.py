"""一标三实 on the standard address: people, residences, houses, units, key groups.

Revision ID: 0011_residents
Revises: 0002_addresses (records refer to standard addresses by code)

Every record keeps its history: people, houses and units are versioned (one row per version, the current
one with ``valid_to IS NULL``; ``id`` is the stable id of a person or unit, ``row_id`` the row's own);
residences and key-group flags run from a date to a date. ``source`` tells grid-collected rows from the
police extract's and from generated demo data (``synthetic``).
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_residents"
down_revision = "0002_addresses"
branch_labels = None
depends_on = None

REGISTRATIONS = ("户籍", "常住", "流动", "境外")
HOUSE_USES = ("自住", "出租", "空置", "商用", "其他")
SOURCES = ("grid", "police", "synthetic")
KEY_GROUP_KINDS = (
    ("elderly_alone", "独居老人", "elderly living alone"),
    ("elderly_disabled", "失能老人", "disabled elderly"),
    ("elderly_hardship", "特殊困难老人", "elderly in special hardship"),
    ("minor", "未成年人", "minor"),
    ("disabled", "残疾人", "person with a disability"),
    ("mental_disorder", "精神障碍患者", "person with a mental disorder"),
    ("community_correction", "社区矫正对象", "person under community correction"),
    ("left_behind_child", "留守儿童", "left-behind child"),
    ("low_income", "低保对象", "minimum-subsistence recipient"),
)


def _in(values) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _ts(name: str, **kw) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), **kw)


def _versioned() -> list[sa.Column]:
    return [
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("source", sa.Text, nullable=False, server_default="grid"),
        _ts("valid_from", nullable=False, server_default=sa.func.now()),
        _ts("valid_to"),
        sa.Column("changed_by", sa.Text, nullable=False),
        sa.Column("change_reason", sa.Text, nullable=False, server_default=""),
    ]


def upgrade() -> None:
    op.execute("CREATE SEQUENCE person_id_seq")
    op.execute("CREATE SEQUENCE org_unit_id_seq")
    op.create_table(
        "person",
        sa.Column("row_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("id_type", sa.Text, nullable=False, server_default="citizen_id"),
        sa.Column("id_number", sa.Text),
        sa.Column("nationality", sa.String(3), nullable=False, server_default="CHN"),
        sa.Column("sex", sa.String(1)),
        sa.Column("birth_date", sa.Date),
        sa.Column("phone", sa.Text),
        sa.Column("registration", sa.Text, nullable=False, server_default="常住"),
        *_versioned(),
        sa.CheckConstraint("id_type IN ('citizen_id', 'passport', 'other')", name="ck_person_id_type"),
        sa.CheckConstraint("sex IS NULL OR sex IN ('M', 'F')", name="ck_person_sex"),
        sa.CheckConstraint("registration IN " + _in(REGISTRATIONS), name="ck_person_registration"),
        sa.CheckConstraint("source IN " + _in(SOURCES), name="ck_person_source"),
        sa.UniqueConstraint("id", "version", name="uq_person_version"),
    )
    op.create_index("uq_person_current", "person", ["id"], unique=True, postgresql_where=sa.text("valid_to IS NULL"))
    # dedupe: one current person per document (type, number)
    op.create_index("uq_person_document", "person", ["id_type", "id_number"], unique=True,
                    postgresql_where=sa.text("valid_to IS NULL AND id_number IS NOT NULL"))
    op.create_index("ix_person_id_number", "person", ["id_number"], postgresql_where=sa.text("valid_to IS NULL"))

    op.create_table(
        "residence",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("person_id", sa.BigInteger, nullable=False),
        sa.Column("address_code", sa.String(32), nullable=False),
        sa.Column("from_date", sa.Date, nullable=False),
        sa.Column("to_date", sa.Date),
        sa.Column("source", sa.Text, nullable=False, server_default="grid"),
        sa.Column("changed_by", sa.Text, nullable=False),
        sa.Column("closed_by", sa.Text),
        _ts("created_at", nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("to_date IS NULL OR to_date >= from_date", name="ck_residence_dates"),
        sa.CheckConstraint("source IN " + _in(SOURCES), name="ck_residence_source"),
    )
    # a person lives at one address at a time
    op.create_index("uq_residence_current", "residence", ["person_id"], unique=True,
                    postgresql_where=sa.text("to_date IS NULL"))
    op.create_index("ix_residence_address", "residence", ["address_code"])

    op.create_table(
        "house_info",
        sa.Column("row_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("address_code", sa.String(32), nullable=False),
        sa.Column("use", sa.Text, nullable=False),
        sa.Column("floor_area", sa.Numeric(10, 2)),
        sa.Column("ownership", sa.Text),
        sa.Column("tenant_count", sa.Integer),
        sa.Column("landlord_ref", sa.Text),
        sa.Column("rent_from", sa.Date),
        sa.Column("rent_to", sa.Date),
        *_versioned(),
        sa.CheckConstraint("use IN " + _in(HOUSE_USES), name="ck_house_use"),
        sa.CheckConstraint("floor_area IS NULL OR floor_area > 0", name="ck_house_area"),
        sa.CheckConstraint("tenant_count IS NULL OR tenant_count >= 0", name="ck_house_tenants"),
        sa.CheckConstraint("source IN " + _in(SOURCES), name="ck_house_source"),
        sa.UniqueConstraint("address_code", "version", name="uq_house_version"),
    )
    op.create_index("uq_house_current", "house_info", ["address_code"], unique=True,
                    postgresql_where=sa.text("valid_to IS NULL"))

    op.create_table(
        "org_unit",
        sa.Column("row_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("credit_code", sa.String(18)),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("address_code", sa.String(32), nullable=False),
        sa.Column("contact_name", sa.Text),
        sa.Column("contact_phone", sa.Text),
        sa.Column("staff_count", sa.Integer),
        *_versioned(),
        sa.CheckConstraint("staff_count IS NULL OR staff_count >= 0", name="ck_org_unit_staff"),
        sa.CheckConstraint("source IN " + _in(SOURCES), name="ck_org_unit_source"),
        sa.UniqueConstraint("id", "version", name="uq_org_unit_version"),
    )
    op.create_index("uq_org_unit_current", "org_unit", ["id"], unique=True,
                    postgresql_where=sa.text("valid_to IS NULL"))
    op.create_index("uq_org_unit_credit_code", "org_unit", ["credit_code"], unique=True,
                    postgresql_where=sa.text("valid_to IS NULL AND credit_code IS NOT NULL"))
    op.create_index("ix_org_unit_address", "org_unit", ["address_code"],
                    postgresql_where=sa.text("valid_to IS NULL"))

    kinds = op.create_table(
        "key_group_kind",
        sa.Column("code", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("name_en", sa.Text, nullable=False, server_default=""),
        sa.Column("sort", sa.Integer, nullable=False, server_default="0"),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    )
    op.bulk_insert(kinds, [{"code": c, "name": zh, "name_en": en, "sort": i}
                           for i, (c, zh, en) in enumerate(KEY_GROUP_KINDS)])

    op.create_table(
        "person_key_group",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("person_id", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.Text, sa.ForeignKey("key_group_kind.code", onupdate="CASCADE"), nullable=False),
        sa.Column("from_date", sa.Date, nullable=False),
        sa.Column("to_date", sa.Date),
        sa.Column("note", sa.Text),
        sa.Column("source", sa.Text, nullable=False, server_default="grid"),
        sa.Column("changed_by", sa.Text, nullable=False),
        _ts("created_at", nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("to_date IS NULL OR to_date >= from_date", name="ck_person_key_group_dates"),
    )
    op.create_index("uq_person_key_group_current", "person_key_group", ["person_id", "kind"], unique=True,
                    postgresql_where=sa.text("to_date IS NULL"))


def downgrade() -> None:
    for table in ("person_key_group", "key_group_kind", "org_unit", "house_info", "residence", "person"):
        op.drop_table(table)
    op.execute("DROP SEQUENCE org_unit_id_seq")
    op.execute("DROP SEQUENCE person_id_seq")
