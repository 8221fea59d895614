"""数据分类分级 data classification: one table of every layer and every personal field, with its level
and the grounds for it.

Levels: 公开 public < 内部 internal < 敏感 sensitive (personal information) < 核心 restricted.
Grounds cite the Personal Information Protection Law of the PRC (个人信息保护法, PIPL, 2021), the Data
Security Law (数据安全法, DSL, 2021) and GB/T 35273-2020 《信息安全技术 个人信息安全规范》.

Reading rules (`max_level`, `clear_read_roles`): the public reads 公开 only; staff read up to 内部; a field
at 敏感 or 核心 is read in clear only by the few roles its row names (and each clear read is audited),
other staff see it masked (`masking.py`), the public not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from . import roles as r


class Level(IntEnum):
    """Classification levels, ordered."""

    PUBLIC = 0
    INTERNAL = 1
    SENSITIVE = 2
    RESTRICTED = 3

    @property
    def zh(self) -> str:
        """The Chinese name (公开, 内部, 敏感, 核心)."""
        return ("公开", "内部", "敏感", "核心")[self]

    @property
    def en(self) -> str:
        """The English name."""
        return ("public", "internal", "sensitive", "restricted")[self]


PUBLIC, INTERNAL, SENSITIVE, RESTRICTED = Level.PUBLIC, Level.INTERNAL, Level.SENSITIVE, Level.RESTRICTED


@dataclass(frozen=True)
class Classified:
    """One row: a layer (``layer:<id>``) or a field (``<table>.<column>``), its level and grounds."""

    key: str
    level: Level
    title: str
    grounds: str
    #: roles that may read a 敏感 / 核心 field in clear (always audited); empty = nobody
    clear_roles: frozenset[str] = frozenset()
    #: how the field is masked for other staff: name, phone, id_number, address, redact
    mask: str = "redact"

    @property
    def kind(self) -> str:
        """``layer`` or ``field``."""
        return "layer" if self.key.startswith("layer:") else "field"


# grounds, cited once
G_OPEN = "公开地理信息（OpenStreetMap ODbL 或行政区划 GB/T 2260），不含个人信息 open geographic data, no personal information"
G_ADMIN = "行政区划与治理单元范围，属政务公开信息（《政府信息公开条例》第 19、20 条） government information disclosure"
G_ADDRESS = ("标准地址至门牌、楼栋级为公共地名地址信息（《地名管理条例》第 27 条）；不指向具体住户 "
             "public place-name / address data down to house number and building, not identifying a household")
G_ROOM = ("门户级（单元/楼层/室）地址可指向具体住户，结合其他信息可识别自然人：个人信息保护法第 4 条，"
          "GB/T 35273-2020 第 3.1 条及附录 A；按最小必要原则仅限工作人员 room-level addresses identify households "
          "(PIPL art. 4; GB/T 35273-2020 §3.1, annex A): staff only")
G_WORK = ("工作数据、统计与规划中间成果，未经审定不公开（数据安全法第 21 条分类分级；《政府信息公开条例》第 16 条过程性信息） "
          "working / planning data, not published before review (DSL art. 21)")
G_SECURITY = ("公共安全视频点位涉及治安防控部署，仅限工作人员（数据安全法第 21 条；《公共安全视频图像信息系统管理条例》） "
              "public-security camera positions: staff only")
G_PI = ("个人信息（姓名、联系电话等）：个人信息保护法第 4、6（最小必要）、10、51 条；GB/T 35273-2020 第 3.1 条、"
        "附录 A，第 7.3 条（展示限制：去标识化/屏蔽） personal information (PIPL arts. 4, 6, 10, 51; "
        "GB/T 35273-2020 §3.1, annex A, §7.3 display masking)")
G_SPI = ("个人敏感信息（身份证件号码等）：个人信息保护法第 28、29 条（敏感个人信息，单独同意、严格保护），"
         "GB/T 35273-2020 第 3.2 条及附录 B；仅公安等确有必要者明文读取 sensitive personal information "
         "(PIPL arts. 28, 29; GB/T 35273-2020 §3.2, annex B)")
G_CRED = ("身份鉴别信息（口令散列、密钥散列）：GB/T 35273-2020 附录 B（个人敏感信息：口令、密钥）；"
          "GB/T 22239-2019 等级保护 8.1.4.1 身份鉴别，任何人不得读取 authentication data: never readable")
G_AUDIT = ("审计记录：网络安全法第 21 条（日志留存不少于六个月），GB/T 22239-2019 8.1.4.3 安全审计；"
           "可能含修改前后的个人信息 audit records (Cybersecurity Law art. 21), may hold personal data")
G_POLICE = "派出所辖区划分属公安工作信息，仅限工作人员 police-station areas: police work information, staff only"

_L = "layer:"
_OFFICE_CLEAR = frozenset({r.ADMIN, r.STREET, r.COMMUNITY, r.POLICE})
#: who reads residents' names, phones and birth dates in clear (within jurisdiction, audited)
_RESIDENT_CLEAR = frozenset({r.ADMIN, r.POLICE, r.COMMUNITY})

CLASSIFICATION: tuple[Classified, ...] = (
    # ---- layers of layers.registry (a test checks every registered layer has its row) ----
    Classified(_L + "basemap", PUBLIC, "底图（多图层瓦片）basemap", G_OPEN),
    Classified(_L + "water", PUBLIC, "水系 water", G_OPEN),
    Classified(_L + "railway", PUBLIC, "铁路 railways", G_OPEN),
    Classified(_L + "road", PUBLIC, "道路 roads", G_OPEN),
    Classified(_L + "building", PUBLIC, "建筑 buildings", G_OPEN + "；户数为按面积估算 households estimated from floor area"),
    Classified(_L + "poi", PUBLIC, "兴趣点 points of interest", G_OPEN),
    Classified(_L + "demo_address_point", PUBLIC, "门址点（OSM）OSM address points", G_OPEN),
    Classified(_L + "admin_district", PUBLIC, "区县界 districts", G_ADMIN),
    Classified(_L + "admin_township", PUBLIC, "街道界 townships", G_ADMIN),
    Classified(_L + "admin_community", PUBLIC, "社区界 communities", G_ADMIN),
    Classified(_L + "compound", PUBLIC, "小区 compounds", G_ADDRESS),
    Classified(_L + "standard_address", PUBLIC, "标准地址（至门牌、楼栋）standard addresses", G_ADDRESS),
    Classified(_L + "standard_address_history", INTERNAL, "标准地址（含门户级与历史）addresses with history", G_ROOM),
    Classified(_L + "grid", PUBLIC, "网格 grids", G_ADMIN),
    Classified(_L + "microgrid", INTERNAL, "微网格 micro-grids",
               "楼栋组级治理单元，与网格人员关联 building-group units tied to grid staff; " + G_WORK),
    Classified(_L + "street_block", INTERNAL, "街区 street blocks", G_WORK),
    Classified(_L + "h3_cell", INTERNAL, "H3 统计格网 H3 statistics", G_WORK),
    Classified(_L + "facility", PUBLIC, "现有服务设施 existing facilities", G_OPEN),
    Classified(_L + "facility_planned", INTERNAL, "规划设施（选址结果）planned facilities", G_WORK),
    Classified(_L + "camera", INTERNAL, "监控摄像头 cameras", G_SECURITY),
    Classified(_L + "police_area", INTERNAL, "派出所辖区 police-station areas", G_POLICE),
    Classified(_L + "key_place", INTERNAL, "重点场所（风险等级）key places", G_WORK),  # issue 12
    Classified(_L + "coverage_gap", INTERNAL, "服务覆盖盲区（覆盖分析）coverage gaps", G_WORK),
    # ---- room-level addresses (户/室) ----
    Classified("standard_address.room_level", INTERNAL, "门户级地址（单元、楼层、室）room-level addresses", G_ROOM,
               mask="address"),
    # ---- accounts: staff names and contacts (people in charge) ----
    Classified("app_user.name", INTERNAL, "登录名 login name", G_PI),
    Classified("app_user.display_name", SENSITIVE, "工作人员姓名 staff name", G_PI, _OFFICE_CLEAR, "name"),
    Classified("app_user.contact_phone", SENSITIVE, "工作人员联系电话 staff phone", G_PI, _OFFICE_CLEAR, "phone"),
    Classified("app_user.contact_office", INTERNAL, "办公地点 office", "工作单位地址，非住址 a workplace, not a home; " + G_PI),
    Classified("app_user.password_hash", RESTRICTED, "口令散列 password hash", G_CRED),
    Classified("api_key.key_hash", RESTRICTED, "API 密钥散列 API key hash", G_CRED),
    Classified("grid_staff.person_ref", SENSITIVE, "网格人员（姓名）grid staff name", G_PI, _OFFICE_CLEAR, "name"),
    Classified("grid_staff.phone", SENSITIVE, "网格人员电话 grid staff phone", G_PI, _OFFICE_CLEAR, "phone"),
    # ---- where a resident lives (一标三实) ----
    Classified("residence.address_code", SENSITIVE, "居住地址（至室）home address", G_PI + "；" + G_ROOM,
               frozenset({r.ADMIN, r.POLICE, r.COMMUNITY}), "address"),
    # ---- the three 实 (residents package, migration 0011_residents) ----
    Classified("person.name", SENSITIVE, "实有人口姓名 resident name", G_PI, _RESIDENT_CLEAR, "name"),
    Classified("person.phone", SENSITIVE, "实有人口电话 resident phone", G_PI, _RESIDENT_CLEAR, "phone"),
    Classified("person.id_number", RESTRICTED, "公民身份号码、护照号码 ID / passport number", G_SPI,
               frozenset({r.ADMIN, r.POLICE}), "id_number"),
    Classified("person.birth_date", SENSITIVE, "出生日期 date of birth", G_PI, _RESIDENT_CLEAR, "redact"),
    Classified("person_key_group.kind", SENSITIVE, "重点人群标记 key-group flags",
               "可揭示健康状况、矫正等敏感个人信息（个人信息保护法第 28 条：医疗健康、特定身份），仅限确有必要者 "
               "may reveal health or correction status (PIPL art. 28); " + G_SPI, _RESIDENT_CLEAR, "redact"),
    Classified("house_info.landlord_ref", SENSITIVE, "房东（姓名或编号）landlord", G_PI, _RESIDENT_CLEAR, "name"),
    Classified("org_unit.contact_name", SENSITIVE, "单位联系人 unit contact name", G_PI, _RESIDENT_CLEAR, "name"),
    Classified("org_unit.contact_phone", SENSITIVE, "单位联系电话 unit contact phone", G_PI, _RESIDENT_CLEAR,
               "phone"),
    # ---- audit log ----
    Classified("audit_log.ip", INTERNAL, "来源 IP source IP", G_AUDIT),
    Classified("audit_log.before", SENSITIVE, "修改前内容 before", G_AUDIT, frozenset({r.ADMIN}), "redact"),
    Classified("audit_log.after", SENSITIVE, "修改后内容 after", G_AUDIT, frozenset({r.ADMIN}), "redact"),
)

_BY_KEY = {c.key: c for c in CLASSIFICATION}
if len(_BY_KEY) != len(CLASSIFICATION):  # pragma: no cover - developer error
    raise RuntimeError("duplicate key in the classification table")


def row(key: str) -> Classified | None:
    """The row of a layer (``layer:<id>``) or field (``table.column``), or None."""
    return _BY_KEY.get(key)


def level_of(key: str) -> Level:
    """The level of a layer or field; unclassified things count as 核心 (refused, never shown)."""
    found = _BY_KEY.get(key)
    return found.level if found else RESTRICTED


def layer_level(layer_id: str) -> Level:
    """The level of a registered layer (unknown layers: 核心)."""
    return level_of(_L + layer_id)


def max_level(role: str) -> Level:
    """The highest level a role reads without per-field grounds: public → 公开, staff and keys → 内部."""
    if role == r.PUBLIC:
        return PUBLIC
    if role in r.STAFF_ROLES or role == r.SYSTEM:
        return INTERNAL
    return PUBLIC


def clear_read_roles(key: str) -> frozenset[str]:
    """Roles that may read this field in clear (below or at their `max_level` everyone may)."""
    found = _BY_KEY.get(key)
    if found is None:
        return frozenset()
    if found.level <= INTERNAL:
        return frozenset(role for role in r.ROLES if max_level(role) >= found.level)
    return found.clear_roles


def may_read_layer(role: str, layer_id: str) -> bool:
    """True when a role may read a whole layer (layers are read at `max_level`)."""
    return layer_level(layer_id) <= max_level(role)


def registry_read_role_level(read_role: str) -> Level:
    """The level `layers.registry`'s ``read_role`` stands for (public → 公开, staff → 内部, admin → 敏感)."""
    return {"public": PUBLIC, "staff": INTERNAL, "admin": SENSITIVE}.get(read_role, RESTRICTED)


def registry_mismatches() -> list[tuple[str, str, Level]]:
    """Registry layers whose ``read_role`` is looser than their classification (to fix in the wiring)."""
    from layers import registry

    return [(layer.id, layer.read_role, layer_level(layer.id)) for layer in registry.all_layers()
            if registry_read_role_level(layer.read_role) < layer_level(layer.id)]
