"""Key places (重点场所): a category table (risk level, inspection interval, responsible department, weight as
demand in analyses, the OSM kinds that seed it) and the registry of key places on standard addresses.

Revision ID: 0015_yibiao_key_places
Revises: 0002_addresses
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0015_yibiao_key_places"
down_revision = "0002_addresses"
branch_labels = None
depends_on = None

#: code, name, risk level (1 low … 3 high), inspection interval (days), department, weight, OSM kinds
CATEGORIES = (
    ("school", "学校", 3, 30, "教育局、派出所", 5.0, ["school", "college", "university"]),
    ("kindergarten", "幼儿园", 3, 30, "教育局、派出所", 5.0, ["kindergarten", "childcare"]),
    ("hospital", "医院", 3, 30, "卫健委、派出所", 5.0, ["hospital"]),
    ("clinic", "诊所、药店", 1, 90, "卫健委", 2.0, ["clinic", "doctors", "pharmacy", "dentist"]),
    ("elderly_care", "养老机构", 3, 30, "民政局", 5.0, ["nursing_home", "social_facility", "retirement_home"]),
    ("market", "商场、市场", 2, 60, "市场监管局、消防", 4.0, ["marketplace", "mall", "supermarket", "department_store"]),
    ("fuel", "加油加气站", 3, 30, "应急管理局、消防", 5.0, ["fuel", "gas"]),
    ("hazardous", "危险化学品场所", 3, 15, "应急管理局", 5.0, ["chemist", "industrial"]),
    ("worship", "宗教活动场所", 2, 60, "民宗委、派出所", 3.0, ["place_of_worship"]),
    ("entertainment", "娱乐场所", 2, 60, "文旅局、派出所", 3.0, ["bar", "pub", "nightclub", "cinema", "karaoke"]),
    ("hotel", "旅馆业", 2, 60, "派出所（治安）", 3.0, ["hotel", "hostel", "guest_house", "motel"]),
    ("finance", "金融网点", 2, 60, "派出所", 3.0, ["bank", "bureau_de_change"]),
    ("transport", "交通枢纽", 2, 60, "交通委、派出所", 4.0, ["station", "subway_entrance", "bus_station",
                                                         "ferry_terminal"]),
    ("construction", "建筑工地", 2, 30, "住建委", 2.0, ["construction"]),
    ("rental_block", "出租房屋集中区", 2, 60, "派出所、社区", 2.0, []),
)


def upgrade() -> None:
    cat = op.create_table(
        "key_place_category",
        sa.Column("code", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("risk_level", sa.SmallInteger, nullable=False),
        sa.Column("inspection_days", sa.Integer, nullable=False),
        sa.Column("department", sa.Text, nullable=False),
        sa.Column("weight", sa.Float, nullable=False),
        sa.Column("osm_kinds", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("sort", sa.Integer, nullable=False, server_default="0"),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.CheckConstraint("risk_level BETWEEN 1 AND 3", name="ck_key_place_category_risk"),
        sa.CheckConstraint("inspection_days > 0 AND weight >= 0", name="ck_key_place_category_numbers"),
    )
    op.bulk_insert(cat, [{"code": c, "name": n, "risk_level": r, "inspection_days": d, "department": dep,
                          "weight": w, "osm_kinds": k, "sort": i} for i, (c, n, r, d, dep, w, k) in enumerate(CATEGORIES)])
    op.create_table(
        "key_place",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("category", sa.Text, sa.ForeignKey("key_place_category.code"), nullable=False),
        # the category's name and risk level, kept on the row for the map layer (updated with the category)
        sa.Column("category_name", sa.Text, nullable=False),
        sa.Column("risk_level", sa.SmallInteger, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("address_code", sa.String(32)),
        sa.Column("address_distance_m", sa.Float),
        sa.Column("community_code", sa.String(12)),
        sa.Column("poi_id", sa.BigInteger),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="active"),
        sa.Column("note", sa.Text),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.Column("changed_by", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("source IN ('osm', 'manual')", name="ck_key_place_source"),
        sa.CheckConstraint("status IN ('active', 'closed')", name="ck_key_place_status"),
        sa.CheckConstraint("length(name) BETWEEN 1 AND 200", name="ck_key_place_name"),
    )
    op.create_index("uq_key_place_poi", "key_place", ["poi_id"], unique=True,
                    postgresql_where=sa.text("poi_id IS NOT NULL"))
    op.create_index("ix_key_place_geom", "key_place", ["geom"], postgresql_using="gist")
    op.create_index("ix_key_place_address", "key_place", ["address_code"])


def downgrade() -> None:
    op.drop_table("key_place")
    op.drop_table("key_place_category")
