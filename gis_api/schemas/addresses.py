"""Request and response models of `gis_api.routers.addresses` (the standard-address registry)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, StrictFloat

from address_registry.records import REGISTRY_LEVELS
from gis_api.params import CrsField, JsonInt


class Change(BaseModel):
    """Why a change is made (required). Who makes it is the authenticated caller, never a body field."""

    reason: str = Field(..., min_length=1, description="修改原因 why")
    version: JsonInt | None = Field(
        None, description="所依据的版本（或 If-Match 头）；已被他人修改时 412 the version you edited (or If-Match); "
                          "412 when the address changed since")


AREA_DESCRIPTION = (
    "小区范围：GeoJSON Polygon 或 MultiPolygon（或含其一的 Feature），坐标系同 crs；须为有效面（不自动修复）、"
    "在中国境内、位于一个区县内 the compound's polygon (level compound only), in `crs`; must be valid "
    "(not repaired), inside China and inside one district"
)


class AddressIn(Change):
    """A new address, or a compound (小区) with its polygon."""

    level: Literal[REGISTRY_LEVELS] = Field(  # type: ignore[valid-type]
        ..., description="road | compound | house_number | building | unit | floor | room")
    parent_code: str | None = Field(
        None,
        description="上级标准地址编码（道路、小区的上级为6位区县代码；小区可省略，由范围确定）"
        " parent code (a 6-digit district code for a road or compound; a compound's comes from its area)",
    )
    components: dict[str, str] = Field(
        default_factory=dict,
        description='本级要素，如 {"house_number": "32号"} 或 {"compound": "外滩新苑"}；可带上级要素用于一致性校验',
    )
    name: str | None = Field(None, description="小区名称（level=compound 时可代替 components.compound）")
    lon: StrictFloat | None = Field(
        None,
        description="经度（小区为标注点，可省略：取范围内一点） longitude; a compound's optional label point",
    )
    lat: StrictFloat | None = Field(None, description="纬度 latitude")
    crs: CrsField = Field("wgs84", description="输入坐标系 wgs84 | cgcs2000 | gcj02 (point and area)")
    area: dict[str, Any] | None = Field(None, description=AREA_DESCRIPTION)
    building_id: JsonInt | None = None
    community_code: str | None = None
    source: str = "manual"
    aliases: list[str] = []


class AddressPatch(Change):
    """A correction: only the fields given change."""

    components: dict[str, str] | None = None
    lon: StrictFloat | None = None
    lat: StrictFloat | None = None
    crs: CrsField = "wgs84"
    area: dict[str, Any] | None = Field(
        None,
        description="更正小区范围（成员随之更新） a compound's corrected polygon; members follow. "
        + AREA_DESCRIPTION,
    )
    building_id: JsonInt | None = None
    community_code: str | None = None


class AliasOut(BaseModel):
    """An alias of an address."""

    alias: str
    kind: str = Field(..., description="former_name | poi | compound | variant")
    source: str | None = None


class MembersOut(BaseModel):
    """The addresses that joined or left a compound."""

    joined: list[str] = Field(
        ..., description="成为小区成员的地址（各得新版本） addresses that joined (new versions)"
    )
    left: list[str] = Field(
        ..., description="离开小区的地址（各得新版本） addresses that left (new versions)"
    )


class AddressOut(BaseModel):
    """The current version of a standard address (fields absent from a response are not set)."""

    address_code: str
    version: int
    level: str
    parent_code: str | None = None
    formatted: str = Field(..., description="格式化全称 formatted full text")
    components: dict[str, str]
    normalized_text: str
    lon: float | None = Field(None, description="WGS84")
    lat: float | None = Field(None, description="WGS84")
    district_code: str | None = None
    township_code: str | None = None
    community_code: str | None = None
    compound_code: str | None = None
    building_id: int | None = None
    source: str
    status: str
    valid_from: str | None = None
    valid_to: str | None = None
    changed_by: str | None = None
    change_reason: str | None = None
    related_codes: list[str] = []
    area: dict[str, Any] | None = Field(
        None, description="小区范围 GeoJSON MultiPolygon, WGS84 (compounds only)"
    )
    aliases: list[AliasOut] = []
    members: MembersOut | None = Field(
        None, description="新建小区或更正其范围时：成员变化 compounds created or redrawn: membership changes"
    )
    members_total: int | None = Field(
        None,
        description="小区：GET /addresses?compound_code= 的总数（含小区本身） compounds: that listing's total",
    )


class MergeIn(Change):
    """Merge ``codes`` into ``into`` (the others are retired pointing at it)."""

    codes: list[str] = Field(..., min_length=1)
    into: str


class SplitPart(BaseModel):
    """One new address of a split."""

    components: dict[str, str]
    lon: StrictFloat | None = None
    lat: StrictFloat | None = None
    building_id: JsonInt | None = None
    community_code: str | None = None


class SplitIn(Change):
    """Split an address into at least two new ones."""

    parts: list[SplitPart] = Field(..., min_length=2)
    crs: CrsField = "wgs84"


class AliasIn(BaseModel):
    """A new alias (``version``/If-Match: the address version it was added to, optional)."""

    version: JsonInt | None = None
    alias: str
    kind: str = "variant"
