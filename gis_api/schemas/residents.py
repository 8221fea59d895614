"""Request models of `gis_api.routers.residents` (一标三实: people, houses, units on a standard address)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field, StrictBool, StrictFloat

from gis_api.params import JsonInt


class PersonIn(BaseModel):
    """A person to record at the address in the path (deduped by document number: 409 with the existing id)."""

    name: str = Field(..., min_length=1, max_length=200, description="姓名 name")
    id_type: str = Field("citizen_id", description="citizen_id（公民身份号码）| passport | other")
    id_number: str | None = Field(None, description="证件号码；公民身份号码按 GB 11643 校验，15 位自动升位")
    nationality: str = Field("CHN", description="国籍 ISO 3166 alpha-3")
    sex: str | None = Field(None, description="M | F（可由身份号码推得）")
    birth_date: date | None = Field(None, description="出生日期（可由身份号码推得）")
    phone: str | None = Field(None, description="手机或固定电话")
    registration: str = Field("常住", description="户籍 | 常住 | 流动 | 境外")
    from_date: date | None = Field(None, description="入住日期，默认今天 moved in on (default today)")


class PersonPatch(BaseModel):
    """Corrections to a person (a new version; send the version you edited as If-Match or ``version``)."""

    name: str | None = Field(None, min_length=1, max_length=200)
    id_type: str | None = None
    id_number: str | None = None
    nationality: str | None = None
    sex: str | None = None
    birth_date: date | None = None
    phone: str | None = None
    registration: str | None = None
    version: JsonInt | None = Field(None, description="所依据的版本 the version you edited")


class MoveIn(BaseModel):
    """Move a person: the current residence closes on ``from_date``, a new one opens at ``address_code``."""

    address_code: str = Field(..., min_length=6, max_length=32)
    from_date: date | None = Field(None, description="迁入日期，默认今天")


class KeyGroupIn(BaseModel):
    """Flag (``on``) or unflag a person in a key group (重点人群)."""

    kind: str = Field(..., description="类别代码，见 GET /residents/key-groups")
    on: StrictBool = True
    on_date: date | None = Field(None, description="起止日期，默认今天 from / to date (default today)")
    note: str | None = Field(None, max_length=500)


class HouseIn(BaseModel):
    """The house details of the address in the path (a new version of its record)."""

    use: str = Field(..., description="自住 | 出租 | 空置 | 商用 | 其他")
    floor_area: StrictFloat | None = Field(None, gt=0, description="建筑面积（平方米）")
    ownership: str | None = Field(None, description="商品房 | 公房 | 私房 | 单位产权 | 其他")
    tenant_count: JsonInt | None = Field(None, ge=0, description="租住人数（出租屋）")
    landlord_ref: str | None = Field(None, max_length=200, description="房东（姓名或人员编号）")
    rent_from: date | None = None
    rent_to: date | None = None
    version: JsonInt | None = Field(None, description="所依据的版本（首次登记为 0）")


class UnitIn(BaseModel):
    """A unit / organisation at the address in the path."""

    name: str = Field(..., min_length=1, max_length=200)
    credit_code: str | None = Field(None, description="统一社会信用代码（GB 32100 校验）")
    kind: str = Field("企业", description="企业 | 个体工商户 | 机关 | 事业单位 | 社会组织 | 其他")
    contact_name: str | None = Field(None, max_length=200)
    contact_phone: str | None = None
    staff_count: JsonInt | None = Field(None, ge=0)


class UnitPatch(BaseModel):
    """Corrections to a unit (a new version)."""

    name: str | None = Field(None, min_length=1, max_length=200)
    credit_code: str | None = None
    kind: str | None = None
    address_code: str | None = None
    contact_name: str | None = None
    contact_phone: str | None = None
    staff_count: JsonInt | None = Field(None, ge=0)
    version: JsonInt | None = None
